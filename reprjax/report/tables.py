"""From result tables to the paper's numbers: error curves, n*(d) at a threshold, exponents with intervals.

* :func:`grid_columns`: the columns that identify a configuration (method, target, d, n, width and every
  hyper-parameter); curves and tables are grouped by all of them, so two configurations are never averaged.
* :func:`error_curves`: mean, standard deviation and count of a metric over seeds per configuration (successful runs
  only; a repeated (configuration, seed) row is counted once and reported in ``duplicates``).
* :func:`crossing`: ``n*`` where a decreasing error curve first falls to a threshold (log-log interpolation between
  the bracketing grid points), or the bound the grid gives when it does not cross inside it: ``n* <= n_min`` when
  already below at the first point, ``n* > n_max`` when never below.
* :func:`n_star_table`: ``n*`` per (configuration without ``n``), censored values as bounds (``n_star`` is nan
  there; ``censored`` and ``n_star_text`` say which bound).
* :func:`exponent_table`: the slope of ``log n*`` on ``log d`` over the resolved dimensions only, the unresolved
  ones named, a one-sided bound where the censoring allows one, and a t interval from a seed bootstrap
  (:func:`bootstrap_exponent`).

Intervals at 3 seeds: a percentile bootstrap over 3 seeds has 10 distinct resamples per ``d`` and its spread
underestimates the sampling spread by ``(s - 1) / s``; it under-covers.  :func:`bootstrap_exponent` instead takes
the bootstrap variance of each ``log n*(d)``, rescales it by ``s / (s - 1)``, adds the dimensions up with the
least-squares weights of the slope and uses a Student t quantile with Welch-Satterthwaite degrees of freedom.
tests/test_analysis.py checks its coverage on synthetic tables with a known exponent at 3 seeds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

#: Columns of a results row that describe the run rather than identify its configuration.
RUN_BOOKKEEPING = ("seed", "group_id", "group_size", "attempt", "device", "wall_time_s", "status", "error")
#: Outcome columns (:class:`reprjax.methods.contract.Metrics`), never grouping keys.
METRICS = ("test_nmse", "test_mae", "val_mse", "lam", "lam_position", "edge_val_drop", "alignment", "failed")
STAT_COLUMNS = ("mean", "std", "count", "sem", "duplicates")
GROUP_KEYS = ("method", "target", "d", "n")


def grid_columns(df: pd.DataFrame) -> list[str]:
    """Columns identifying a configuration: every column but the bookkeeping, the outcomes and the statistics."""
    skip = set(RUN_BOOKKEEPING) | set(METRICS) | set(STAT_COLUMNS)
    return [c for c in df.columns if c not in skip]


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of successful runs (failed runs are reported, never averaged)."""
    if df.empty or "status" not in df.columns:
        return df
    return df[df["status"] == "ok"]


def _hashable(df: pd.DataFrame) -> pd.DataFrame:
    """List-valued columns (tuple hyper-parameters read back from JSON) as tuples, so they can group."""
    lists = [c for c in df.columns if df[c].dtype == object and df[c].map(lambda v: isinstance(v, list)).any()]
    return df.assign(**{c: df[c].map(lambda v: tuple(v) if isinstance(v, list) else v) for c in lists}) if lists else df


def _varies(df: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` takes several values for one method (a per-method hyper-parameter, null for the other
    methods, does not vary)."""
    if "method" in df.columns and column != "method":
        return bool((df.groupby("method")[column].nunique(dropna=False) > 1).any())
    return df[column].nunique(dropna=False) > 1


def _keys(df: pd.DataFrame, by: Sequence[str] | None) -> list[str]:
    """``by`` (or every grid column) plus every other grid column that varies: nothing is averaged across them."""
    df = _hashable(df)
    cols = grid_columns(df)
    keys = [k for k in (by if by is not None else cols) if k in df.columns]
    return keys + [c for c in cols if c not in keys and _varies(df, c)]


def error_curves(df: pd.DataFrame, metric: str = "test_nmse", by: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, std, count (distinct seeds) and standard error of ``metric`` per configuration, successful runs only.

    Args:
      df: a results table.
      metric: the outcome column.
      by: grouping columns; grid columns not in ``by`` that vary are added (default: every grid column).
    """
    df = _hashable(df)
    keys = _keys(df, by)
    good = ok_rows(df)
    if good.empty or metric not in good.columns:
        return pd.DataFrame(columns=[*keys, *STAT_COLUMNS])
    seed = ["seed"] if "seed" in good.columns else []
    dupes = good.duplicated(subset=keys + seed, keep="last") if seed else pd.Series(False, index=good.index)
    grouped = good[~dupes].groupby(keys, dropna=False, sort=True)[metric]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    out["sem"] = out["std"] / np.sqrt(out["count"].clip(lower=1))
    extra = good[dupes].groupby(keys, dropna=False).size().rename("duplicates").reset_index() if dupes.any() else None
    if extra is None:
        out["duplicates"] = 0
    else:
        out["duplicates"] = out.merge(extra, on=keys, how="left")["duplicates"].fillna(0).astype(int)
    return out


def pivot(curves: pd.DataFrame, index: Sequence[str], columns: Sequence[str] | str,
          values: str = "mean") -> pd.DataFrame:
    """A wide table of ``curves`` that never averages: key columns that vary and are in neither ``index`` nor
    ``columns`` join the index."""
    columns = [columns] if isinstance(columns, str) else list(columns)
    keys = [c for c in curves.columns if c not in STAT_COLUMNS and c not in columns]
    index = [c for c in index if c in curves.columns] + [c for c in keys if c not in index and _varies(curves, c)]
    if curves.empty:
        return pd.DataFrame()
    return curves.pivot(index=index, columns=columns, values=values)


def failures(df: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Configurations with rows on disk but no successful run, with their failed-run count and first error."""
    if df.empty or "status" not in df.columns:
        return pd.DataFrame()
    keys = _keys(df, by)
    ok = df["status"] == "ok"
    errors = df["error"] if "error" in df.columns else pd.Series("", index=df.index)
    agg = _hashable(df.assign(_ok=ok, _error=errors)).groupby(keys, dropna=False).agg(
        ok=("_ok", "sum"), runs=("_ok", "size"), error=("_error", "first"))
    return agg[agg["ok"] == 0].reset_index()


#: An edge choice whose validation error fell by less than this over the grid's last step has levelled off
#: (:func:`reprjax.methods.contract.edge_validation_drop`); a larger drop marks the run's error as an upper bound.
EDGE_DROP_TOLERANCE = 1e-3


def strength_edges(df: pd.DataFrame) -> pd.DataFrame:
    """Per method, successful runs whose chosen ridge strength sits at an edge of its grid (``lam_position`` 0 or
    1, :func:`reprjax.methods.contract.strength_position`).  Columns ``method, runs, smallest, largest, unresolved,
    n_min, n_max``: ``unresolved`` counts the edge runs whose validation error still fell by more than
    :data:`EDGE_DROP_TOLERANCE` (relative) over the grid's last step, so their errors are upper bounds;
    ``n_min``/``n_max`` bound the sample counts of those runs.  Methods with no edge run are left out."""
    ok = ok_rows(df)
    if ok.empty or "lam_position" not in ok.columns:
        return pd.DataFrame()
    rows = []
    for method, sub in ok.groupby("method" if "method" in ok.columns else (lambda _: "")):
        pos = sub["lam_position"]
        edge = sub[(pos == 0.0) | (pos == 1.0)]
        if not len(edge):
            continue
        drop = edge["edge_val_drop"] if "edge_val_drop" in edge.columns else pd.Series(math.inf, index=edge.index)
        bad = edge[drop.fillna(math.inf) > EDGE_DROP_TOLERANCE]
        n = bad["n"] if "n" in bad.columns else pd.Series(dtype=float)
        rows.append(dict(method=method, runs=len(sub), smallest=int((pos == 0.0).sum()),
                         largest=int((pos == 1.0).sum()), unresolved=len(bad),
                         n_min=n.min() if len(n) else math.nan, n_max=n.max() if len(n) else math.nan))
    return pd.DataFrame(rows)


def run_status(df: pd.DataFrame, by: Sequence[str] | None = None) -> dict[str, object]:
    """What a report says about failures and edge choices: ``failed_runs``, ``runs``, ``failures``
    (:func:`failures`) and ``strength_edges`` (:func:`strength_edges`)."""
    failed = int((df["status"] != "ok").sum()) if len(df) and "status" in df.columns else 0
    return dict(failed_runs=failed, runs=len(df), failures=failures(df, by), strength_edges=strength_edges(df))


def failure_lines(summary: dict[str, object]) -> list[str]:
    """Report lines naming every configuration with no successful run (skipped in curves and fits), and the methods
    whose chosen ridge strength sat at an edge of its grid (:func:`strength_edges`)."""
    lines = []
    if summary.get("failed_runs"):
        lines.append(f"failed runs (not averaged): {summary['failed_runs']} of {summary.get('runs', '?')}")
    bad = summary.get("failures")
    if isinstance(bad, pd.DataFrame) and len(bad):
        keys = [c for c in bad.columns if c not in ("ok", "runs", "error")]
        lines.append(f"no successful run (skipped in curves and fits) for {len(bad)} configuration(s):")
        for _, row in bad.iterrows():
            label = ", ".join(f"{k}={row[k]}" for k in keys)
            lines.append(f"  {label}: {row['runs']} run(s) failed: {' '.join(str(row['error']).split())[:120]}")
    edges = summary.get("strength_edges")
    if isinstance(edges, pd.DataFrame) and len(edges):
        lines.append(f"ridge strength chosen at an edge of its grid (unresolved: the validation error still fell by "
                     f"> {EDGE_DROP_TOLERANCE:g} over the last step, so those runs' errors are upper bounds):")
        for _, row in edges.iterrows():
            at_n = f" (n {row['n_min']:.0f} to {row['n_max']:.0f})" if row["unresolved"] else ""
            lines.append(f"  {row['method']}: {row['smallest']} of {row['runs']} runs at the smallest strength, "
                         f"{row['largest']} at the largest; unresolved {row['unresolved']}{at_n}")
    return lines


class Crossing(NamedTuple):
    """Where a curve meets the threshold: ``n_star`` (nan unless resolved) and the censoring."""

    n_star: float
    censored: str  # "" (resolved inside the grid), "below" (n* <= n_min), "above" (n* > n_max)
    bound: float  # n_star if resolved, else the grid end that bounds it

    @property
    def text(self) -> str:
        texts = {"": f"{self.n_star:.4g}", "below": f"<= {self.bound:.4g}", "above": f"> {self.bound:.4g}"}
        return texts[self.censored]


def crossing(ns: np.ndarray, errors: np.ndarray, threshold: float) -> Crossing:
    """First ``n`` where ``errors`` (any order of ``ns``) falls to ``threshold``, log-log interpolated; censored
    when the grid does not bracket it (already below at the first point, or never below)."""
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    ns = np.asarray(ns, dtype=float)
    errors = np.asarray(errors, dtype=float)
    order = np.argsort(ns)
    ns, errors = ns[order], errors[order]
    below = np.nonzero(errors <= threshold)[0]
    if below.size == 0:
        return Crossing(math.nan, "above", float(ns[-1]))
    i = int(below[0])
    if i == 0:
        return Crossing(math.nan, "below", float(ns[0]))
    x0, x1 = math.log(ns[i - 1]), math.log(ns[i])
    y0, y1 = math.log(max(errors[i - 1], 1e-300)), math.log(max(errors[i], 1e-300))
    t = (math.log(threshold) - y0) / (y1 - y0) if y1 != y0 else 1.0
    value = float(math.exp(x0 + t * (x1 - x0)))
    return Crossing(value, "", value)


def n_star_table(df: pd.DataFrame, threshold: float, metric: str = "test_nmse") -> pd.DataFrame:
    """``n*`` per configuration (every grid column but ``n``) from its seed-mean curve; censored values are nan in
    ``n_star`` with ``censored`` = ``below`` / ``above`` and the bound in ``n_star_text``."""
    curves = error_curves(df, metric)
    keys = [c for c in curves.columns if c not in STAT_COLUMNS and c != "n"]
    columns = [*keys, "n_star", "censored", "n_star_text", "n_min", "n_max", "error_at_n_max"]
    rows = []
    if len(curves):
        for values, sub in curves.groupby(keys, dropna=False, sort=True):
            sub = sub.sort_values("n")
            cross = crossing(sub["n"].values, sub["mean"].values, threshold)
            rows.append(dict(zip(keys, values if isinstance(values, tuple) else (values,)), n_star=cross.n_star,
                             censored=cross.censored, n_star_text=cross.text, n_min=int(sub["n"].iloc[0]),
                             n_max=int(sub["n"].iloc[-1]), error_at_n_max=float(sub["mean"].iloc[-1])))
    return pd.DataFrame(rows, columns=columns)


def fit_exponent(dims: np.ndarray, n_stars: np.ndarray) -> float:
    """Least-squares slope of ``log n*`` on ``log d`` over the finite ``n*`` (nan unless >= 2 distinct dims)."""
    dims, n_stars = np.asarray(dims, float), np.asarray(n_stars, float)
    ok = np.isfinite(n_stars) & (n_stars > 0)
    if len(np.unique(dims[ok])) < 2:
        return math.nan
    return float(np.polyfit(np.log(dims[ok]), np.log(n_stars[ok]), 1)[0])


def one_sided_bound(dims: np.ndarray, bounds: np.ndarray, censored: Sequence[str]) -> tuple[str, float]:
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


def _seed_matrix(rows: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``(ns, M)`` with ``M[s, j]`` the metric of seed ``s`` at ``ns[j]`` (nan where that run failed)."""
    mat = rows.pivot_table(index="seed", columns="n", values=metric, aggfunc="last", dropna=False)
    return mat.columns.values.astype(float), mat.values.astype(float)


def _crossings(ns: np.ndarray, means: np.ndarray, threshold: float) -> np.ndarray:
    """Vectorised :func:`crossing` over the rows of ``means`` (B, J): log ``n*``, nan where censored."""
    below = means <= threshold
    first = np.argmax(below, axis=1)
    ok = below.any(axis=1) & (first > 0)
    i = np.where(ok, first, 1)
    lx = np.log(ns)
    rows = np.arange(means.shape[0])
    y0 = np.log(np.maximum(means[rows, i - 1], 1e-300))
    y1 = np.log(np.maximum(means[rows, i], 1e-300))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y1 != y0, (math.log(threshold) - y0) / (y1 - y0), 1.0)
    out = lx[i - 1] + t * (lx[i] - lx[i - 1])
    return np.where(ok, out, np.nan)


def bootstrap_exponent(df: pd.DataFrame, method: str | None, threshold: float, n_boot: int = 1000, seed: int = 0,
                       metric: str = "test_nmse", level: float = 0.95) -> dict[str, object]:
    """Exponent of ``n*`` against ``d`` for one configuration family (the rows of ``method``), with an interval.

    Fitted over the dimensions whose seed-mean curve crosses the threshold inside the grid; the others are named
    (``unresolved_dims``) with a one-sided bound where possible.  Interval: per resolved ``d``, the bootstrap
    variance of ``log n*`` over resamples of its seeds, times ``s / (s - 1)``; summed with the slope's weights;
    a t quantile with Welch-Satterthwaite degrees of freedom (module docstring).  ``unresolved`` is the share of
    resamples where a resolved ``d`` became censored (they are left out of the variances).
    """
    good = ok_rows(df)
    if method is not None and "method" in good.columns:
        good = good[good["method"] == method]
    table = n_star_table(good, threshold, metric)
    dims_all = sorted(int(d) for d in table["d"].unique()) if len(table) else []
    resolved = table[table["censored"] == ""]
    dims = resolved["d"].values.astype(float)
    exponent = fit_exponent(dims, resolved["n_star"].values)
    censored_rows = table[table["censored"] != ""]
    kind, bound = one_sided_bound(table["d"].values, np.where(table["censored"] == "", table["n_star"],
                                                              np.where(table["censored"] == "below", table["n_min"],
                                                                       table["n_max"])), list(table["censored"]))
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
    parts, dofs, lost, seeds = [], [], np.zeros(n_boot, bool), []
    for d in dims:
        ns, mat = _seed_matrix(good[good["d"] == d], metric)
        s = mat.shape[0]
        seeds.append(s)
        if s < 2:
            return out
        pick = rng.integers(0, s, size=(n_boot, s))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column of failed runs only: nan, as wanted
            means = np.nanmean(mat[pick], axis=1)
        logs = _crossings(ns, means, threshold)
        lost |= ~np.isfinite(logs)
        parts.append(np.nanvar(logs[np.isfinite(logs)], ddof=1) * s / (s - 1) if np.isfinite(logs).sum() > 1
                     else math.nan)
        dofs.append(s - 1)
    contrib = np.asarray(w) ** 2 * np.asarray(parts)
    var = float(np.sum(contrib))
    if not math.isfinite(var):
        return out
    dof = var**2 / float(np.sum(contrib**2 / np.asarray(dofs))) if var > 0 else float(min(dofs))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * math.sqrt(var)
    out.update(low=exponent - half, high=exponent + half, unresolved=float(lost.mean()), seeds=int(min(seeds)),
               dof=dof)
    return out


def exponent_table(df: pd.DataFrame, threshold: float, n_boot: int = 1000, seed: int = 0,
                   metric: str = "test_nmse") -> pd.DataFrame:
    """:func:`bootstrap_exponent` for every configuration family (every grid column but ``d`` and ``n``)."""
    good = _hashable(ok_rows(df))
    columns = ["method", "exponent", "low", "high", "unresolved", "dims_resolved", "dims_total", "unresolved_dims",
               "bound_kind", "bound", "seeds", "dof"]
    if good.empty:
        return pd.DataFrame(columns=columns)
    keys = [k for k in _keys(good, ["method"]) if k not in ("d", "n")]
    rows = []
    for values, sub in good.groupby(keys, dropna=False, sort=True):
        label = dict(zip(keys, values if isinstance(values, tuple) else (values,)))
        res = bootstrap_exponent(sub, None, threshold, n_boot=n_boot, seed=seed, metric=metric)
        res.update(label)
        rows.append(res)
    extra = [k for k in keys if k not in columns]
    return pd.DataFrame(rows, columns=[*columns, *extra])


def exponent_lines(exponents: pd.DataFrame, total_dims: int | None = None) -> list[str]:
    """Report lines: the exponent over resolved dims with its interval, the unresolved dims and any bound."""
    lines = []
    extra = [c for c in exponents.columns if c not in ("method", "exponent", "low", "high", "unresolved",
                                                       "dims_resolved", "dims_total", "unresolved_dims",
                                                       "bound_kind", "bound", "seeds", "dof")]
    for _, row in exponents.iterrows():
        label = str(row["method"]) + "".join(f" {k}={row[k]}" for k in extra if pd.notna(row[k]))
        total = int(row["dims_total"]) if total_dims is None else total_dims
        if math.isfinite(row["exponent"]):
            text = (f"{row['exponent']:.3g}  [{row['low']:.3g}, {row['high']:.3g}] over {int(row['dims_resolved'])}/"
                    f"{total} dims resolved")
        else:
            text = f"not fitted ({int(row['dims_resolved'])}/{total} dims resolved)"
        if row["unresolved_dims"]:
            text += f"; unresolved: {row['unresolved_dims']}"
        if row["bound_kind"]:
            text += f"; all dims at their bounds: exponent {'>=' if row['bound_kind'] == 'lower' else '<='} " \
                    f"{row['bound']:.3g}"
        if math.isfinite(row["exponent"]) and row["unresolved"]:
            text += f"; resamples censored {row['unresolved']:.0%}"
        lines.append(f"  {label:16s} {text}")
    return lines
