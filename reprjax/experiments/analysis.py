"""From result tables to the paper's numbers: error curves, n*(d) at a threshold, exponents with bootstrap intervals.

* :func:`error_curves`: mean, standard deviation and count of a metric per (method, target, d, n) over seeds.
* :func:`crossing`: ``n*`` where a decreasing error curve first falls below a threshold, by linear interpolation of
  ``log n`` against ``log error`` between the two bracketing grid points; ``nan`` when it never does in range.
* :func:`n_star_table`: ``n*`` per (method, d).
* :func:`fit_exponent`: the slope of ``log n*`` against ``log d`` (least squares); needs ``n*`` at >= 2 dims.
* :func:`bootstrap_exponent`: resample seeds with replacement within each d, recompute the mean curves, ``n*`` and
  the slope; returns the 2.5 / 97.5 percentiles and the share of resamples where a ``n*`` was out of range.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

GROUP_KEYS = ("method", "target", "d", "n")


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of successful runs (failed runs are reported, never averaged)."""
    if df.empty:
        return df
    return df[df["status"] == "ok"]


def error_curves(df: pd.DataFrame, metric: str = "test_nmse", by: tuple[str, ...] = GROUP_KEYS) -> pd.DataFrame:
    """Mean, std, count and standard error of ``metric`` per group of ``by`` (successful runs only)."""
    good = ok_rows(df)
    keys = [k for k in by if k in good.columns]
    out = good.groupby(keys)[metric].agg(["mean", "std", "count"]).reset_index()
    out["sem"] = out["std"] / np.sqrt(out["count"].clip(lower=1))
    return out


def crossing(ns: np.ndarray, errors: np.ndarray, threshold: float) -> float:
    """First ``n`` where ``errors`` (ordered by increasing ``ns``) falls to ``threshold``, log-log interpolated."""
    ns = np.asarray(ns, dtype=float)
    errors = np.asarray(errors, dtype=float)
    order = np.argsort(ns)
    ns, errors = ns[order], errors[order]
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    below = np.nonzero(errors <= threshold)[0]
    if below.size == 0:
        return math.nan
    i = int(below[0])
    if i == 0:
        return float(ns[0])  # already below at the smallest n: n* <= ns[0]; reported as ns[0]
    x0, x1 = math.log(ns[i - 1]), math.log(ns[i])
    y0, y1 = math.log(max(errors[i - 1], 1e-300)), math.log(max(errors[i], 1e-300))
    t = (math.log(threshold) - y0) / (y1 - y0) if y1 != y0 else 1.0
    return float(math.exp(x0 + t * (x1 - x0)))


def n_star_table(df: pd.DataFrame, threshold: float, metric: str = "test_nmse") -> pd.DataFrame:
    """``n*`` per (method, target, d): where the seed-mean error curve crosses ``threshold`` (nan if never)."""
    curves = error_curves(df, metric)
    rows = []
    for (method, target, d), sub in curves.groupby(["method", "target", "d"]):
        rows.append(dict(method=method, target=target, d=int(d), n_star=crossing(sub["n"].values, sub["mean"].values,
                                                                                  threshold),
                         n_min=int(sub["n"].min()), n_max=int(sub["n"].max()),
                         error_at_n_max=float(sub.sort_values("n")["mean"].iloc[-1])))
    return pd.DataFrame(rows)


def fit_exponent(dims: np.ndarray, n_stars: np.ndarray) -> float:
    """Least-squares slope of ``log n*`` on ``log d`` (nan unless >= 2 finite points)."""
    dims, n_stars = np.asarray(dims, float), np.asarray(n_stars, float)
    ok = np.isfinite(n_stars) & (n_stars > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(dims[ok]), np.log(n_stars[ok]), 1)[0])


def bootstrap_exponent(
    df: pd.DataFrame, method: str, threshold: float, n_boot: int = 1000, seed: int = 0, metric: str = "test_nmse"
) -> dict[str, float]:
    """Exponent of ``n*`` against ``d`` for ``method`` with a bootstrap interval over seeds.

    Returns ``exponent`` (from the full data), ``low`` and ``high`` (2.5 / 97.5 percentiles over resamples with a
    finite slope), and ``unresolved`` (share of resamples where some ``n*`` fell outside the grid).
    """
    good = ok_rows(df)
    good = good[good["method"] == method]
    table = n_star_table(good, threshold, metric)
    exponent = fit_exponent(table["d"].values, table["n_star"].values)
    rng = np.random.default_rng(seed)
    dims = sorted(good["d"].unique())
    per_d = {d: good[good["d"] == d].pivot_table(index="seed", columns="n", values=metric) for d in dims}
    slopes, unresolved = [], 0
    for _ in range(n_boot):
        stars = []
        for d in dims:
            mat = per_d[d]
            pick = rng.integers(0, len(mat), size=len(mat))
            mean = mat.iloc[pick].mean(axis=0)
            stars.append(crossing(mean.index.values, mean.values, threshold))
        if not all(np.isfinite(stars)):
            unresolved += 1
        s = fit_exponent(np.asarray(dims), np.asarray(stars))
        if np.isfinite(s):
            slopes.append(s)
    low, high = (np.percentile(slopes, [2.5, 97.5]) if slopes else (math.nan, math.nan))
    return dict(method=method, exponent=exponent, low=float(low), high=float(high),
                unresolved=unresolved / n_boot, dims_resolved=int(np.isfinite(table["n_star"]).sum()))
