"""Exponents of ``n*`` against ``d`` with intervals: the slope of ``log n*`` over the resolved dims, the one-sided
bound all dims give, and the collapse of every point (:mod:`reprjax.report.collapse`).

* :func:`fit_exponent`: the least-squares slope of ``log n*`` on ``log d``.
* :func:`one_sided_bound`: what the censored dims still say about the slope over all dims.
* :func:`bootstrap_exponent`: the slope over the resolved dims with a t interval from a seed bootstrap.
* :func:`family_exponents` / :func:`exponent_table`: slope, bound and collapse per configuration family, and which of
  them is the answer (:func:`answer`): never the fit over a subset of dims that contradicts the bound of all dims.

Intervals at 3 seeds: a percentile bootstrap over 3 seeds has 10 distinct resamples per ``d`` and its spread
underestimates the sampling spread by ``(s - 1) / s``; it under-covers.  :func:`bootstrap_exponent` instead takes
the bootstrap variance of each ``log n*(d)``, rescales it by ``s / (s - 1)``, floors it at the variance the test
estimates alone give (:mod:`reprjax.report.crossings`), adds the dimensions up with the least-squares weights of the
slope and uses a Student t quantile with Welch-Satterthwaite degrees of freedom.  A resample whose seed mean no
longer crosses inside the grid is kept at its bound (``n_max`` or ``n_min``), never dropped, and counted
(``unresolved``); when more than ``(1 - level) / 2`` of the resamples are censored towards one side of the slope, the
interval is open on that side.  Coverage: docs/measurements.md, "Exponent intervals: coverage".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from jaxtyping import Float
from scipy import stats

from reprjax.report.collapse import bootstrap_collapse
from reprjax.report.crossings import crossings, n_star_table
from reprjax.report.tables import grid_keys, hashable_lists, ok_rows, seed_matrix

#: Columns of :func:`family_exponents` (the configuration's columns follow in :func:`exponent_table`).
EXPONENT_COLUMNS = ("method", "exponent", "low", "high", "unresolved", "dims_resolved", "dims_total",
                    "unresolved_dims", "bound_kind", "bound", "seeds", "dof", "collapse", "collapse_low",
                    "collapse_high", "collapse_dims", "collapse_edge", "collapse_dof", "collapse_misfit",
                    "collapse_flat", "answer")


def fit_exponent(dims: Float[np.ndarray, " D"], n_stars: Float[np.ndarray, " D"]) -> float:
    """Least-squares slope of ``log n*`` on ``log d`` over the finite ``n*`` (nan unless >= 2 distinct dims)."""
    dims, n_stars = np.asarray(dims, float), np.asarray(n_stars, float)
    ok = np.isfinite(n_stars) & (n_stars > 0)
    if len(np.unique(dims[ok])) < 2:
        return math.nan
    return float(np.polyfit(np.log(dims[ok]), np.log(n_stars[ok]), 1)[0])


def one_sided_bound(dims: Float[np.ndarray, " D"], bounds: Float[np.ndarray, " D"],
                    censored: Sequence[str]) -> tuple[str, float]:
    """A one-sided bound on the slope over all dims when some ``n*`` are censored.

    The least-squares slope is ``sum_i w_i log n*_i`` with ``w_i`` proportional to ``log d_i - mean``: raising
    an ``n*`` right of the mean (or lowering one left of it) raises the slope.  Censored ``n* > n_max`` right of
    the mean and ``n* <= n_min`` left of it therefore make the slope at the bounds a lower bound; the mirror
    cases an upper bound; a mix gives none.  Returns ``(kind, value)`` with kind ``lower``, ``upper`` or ``""``.
    """
    x = np.log(np.asarray(dims, float))
    if len(np.unique(x)) < 2 or not any(censored):
        return "", math.nan
    w = x - x.mean()
    sides = set()
    for wi, c in zip(w, censored):
        if c and wi != 0:
            sides.add("lower" if (c == "above") == (wi > 0) else "upper")
    if len(sides) != 1:
        return "", math.nan
    return sides.pop(), float(np.polyfit(x, np.log(np.asarray(bounds, float)), 1)[0])


def _family(df: pd.DataFrame, method: str | None) -> pd.DataFrame:
    good = ok_rows(df)
    if method is not None and "method" in good.columns:
        good = good[good["method"] == method]
    return good


def bootstrap_exponent(df: pd.DataFrame, method: str | None, threshold: float, n_boot: int = 1000, seed: int = 0,
                       metric: str = "test_nmse", level: float = 0.95) -> dict[str, object]:
    """Exponent of ``n*`` against ``d`` for one configuration family (the rows of ``method``), with an interval.

    Fitted over the dimensions whose seed-mean curve crosses the threshold inside the grid; the others are named
    (``unresolved_dims``) with a one-sided bound where possible.  Interval: module docstring; ``unresolved`` is the
    share of resamples (one resample of every resolved ``d``) where some resolved ``d`` became censored (kept at its
    bound); ``low`` / ``high`` are -inf / inf on a side those resamples leave open.
    """
    good = _family(df, method)
    table = n_star_table(good, threshold, metric)
    dims_all = sorted(int(d) for d in table["d"].unique()) if len(table) else []
    resolved = table[table["censored"] == ""]
    dims = resolved["d"].values.astype(float)
    exponent = fit_exponent(dims, resolved["n_star"].values)
    censored_rows = table[table["censored"] != ""]
    at_bounds = np.where(table["censored"] == "", table["n_star"],
                         np.where(table["censored"] == "below", table["n_min"], table["n_max"]))
    kind, bound = one_sided_bound(table["d"].values, at_bounds, list(table["censored"]))
    out: dict[str, object] = dict(method=method, exponent=exponent, low=math.nan, high=math.nan, unresolved=0.0,
                                  dims_resolved=len(resolved), dims_total=len(dims_all),
                                  unresolved_dims="; ".join(f"d={int(r['d'])}: n* {r['n_star_text']}"
                                                            for _, r in censored_rows.iterrows()),
                                  bound_kind=kind, bound=bound, seeds=0, dof=math.nan)
    if not math.isfinite(exponent) or n_boot < 2:
        return out
    rng = np.random.default_rng(seed)
    x = np.log(dims)
    w = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
    parts, dofs, seeds, up, down, lost = [], [], [], [], [], []
    for d, wd, floor in zip(dims, w, resolved["log_n_star_se_test"].fillna(0.0).values):
        ns, mat, _ = seed_matrix(good[good["d"] == d], metric)
        mat = mat[np.isfinite(mat).any(axis=1)]
        s = mat.shape[0]
        seeds.append(s)
        if s < 2:
            return out
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column of failed runs only: nan, as wanted
            means = np.nanmean(mat[rng.integers(0, s, size=(n_boot, s))], axis=1)
        logs, side = crossings(ns, means, threshold)
        parts.append(max(float(np.nanvar(logs, ddof=1)) * s / (s - 1), floor**2) if np.isfinite(logs).sum() > 1
                     else math.inf)
        dofs.append(s - 1)
        gone = side == 2  # no run left at any n: unknown either way
        up.append(np.mean(gone | (~gone & (side * np.sign(wd) > 0))))
        down.append(np.mean(gone | (~gone & (side * np.sign(wd) < 0))))
        lost.append(np.mean(side != 0))
    contrib = np.asarray(w) ** 2 * np.asarray(parts)
    var = float(np.sum(contrib))
    if not math.isfinite(var):
        out.update(low=-math.inf, high=math.inf, unresolved=float(1 - np.prod(1 - np.asarray(lost))),
                   seeds=int(min(seeds)))
        return out
    dof = var**2 / float(np.sum(contrib**2 / np.asarray(dofs))) if var > 0 else float(min(dofs))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * math.sqrt(var)
    tail = (1 - level) / 2
    open_high = 1 - np.prod(1 - np.asarray(up)) > tail
    open_low = 1 - np.prod(1 - np.asarray(down)) > tail
    out.update(low=-math.inf if open_low else exponent - half, high=math.inf if open_high else exponent + half,
               unresolved=float(1 - np.prod(1 - np.asarray(lost))), seeds=int(min(seeds)), dof=dof)
    return out


def answer(row: dict[str, object] | pd.Series) -> str:
    """Which number states the exponent: ``slope`` (the fit over the resolved dims), ``bound`` (the one-sided bound
    over all dims: the fit is missing, or lies on the wrong side of the bound, so it is not the exponent) or ``""``
    (neither)."""
    exponent, bound = float(row["exponent"]), float(row["bound"]) if row["bound_kind"] else math.nan
    contradicts = (row["bound_kind"] == "lower" and exponent < bound) or (row["bound_kind"] == "upper"
                                                                           and exponent > bound)
    if math.isfinite(exponent) and not contradicts:
        return "slope"
    return "bound" if row["bound_kind"] else ""


def _curves(good: pd.DataFrame, metric: str) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    return [(float(d), *seed_matrix(sub, metric)) for d, sub in good.groupby("d", sort=True)] if len(good) else []


def family_exponents(df: pd.DataFrame, method: str | None, threshold: float, n_boot: int = 1000, seed: int = 0,
                     metric: str = "test_nmse", level: float = 0.95) -> dict[str, object]:
    """Slope of ``n*`` (:func:`bootstrap_exponent`), the collapse exponent of every point
    (:func:`reprjax.report.collapse.bootstrap_collapse`, ``n_boot // 4`` resamples per dim: it refits the whole
    collapse on each) and the :func:`answer`, for one configuration family."""
    out = bootstrap_exponent(df, method, threshold, n_boot=n_boot, seed=seed, metric=metric, level=level)
    out.update(bootstrap_collapse(_curves(_family(df, method), metric), n_boot=max(n_boot // 4, 2) if n_boot >= 2
                                  else 0, seed=seed, level=level))
    out["answer"] = answer(out)
    return out


def exponent_table(df: pd.DataFrame, threshold: float, n_boot: int = 1000, seed: int = 0,
                   metric: str = "test_nmse", level: float = 0.95) -> pd.DataFrame:
    """:func:`family_exponents` for every configuration family (every grid column but ``d`` and ``n``)."""
    good = hashable_lists(ok_rows(df))
    if good.empty:
        return pd.DataFrame(columns=list(EXPONENT_COLUMNS))
    keys = [k for k in grid_keys(good, ["method"]) if k not in ("d", "n")]
    rows = []
    for values, sub in good.groupby(keys, dropna=False, sort=True):
        label = dict(zip(keys, values if isinstance(values, tuple) else (values,)))
        res = family_exponents(sub, None, threshold, n_boot=n_boot, seed=seed, metric=metric, level=level)
        res.update(label)
        rows.append(res)
    extra = [k for k in keys if k not in EXPONENT_COLUMNS]
    return pd.DataFrame(rows, columns=[*EXPONENT_COLUMNS, *extra])


__all__ = ["EXPONENT_COLUMNS", "answer", "bootstrap_exponent", "exponent_table", "family_exponents", "fit_exponent",
           "one_sided_bound"]
