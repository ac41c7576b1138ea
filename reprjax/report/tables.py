"""From result rows to error curves: grouping by configuration, seed means with their standard errors, failures.

* :func:`grid_columns`: the columns that identify a configuration (method, target, d, n, width and every
  hyper-parameter); curves and tables are grouped by all of them, so two configurations are never averaged.
* :func:`error_curves`: mean, standard deviation, count and standard error of a metric over seeds per configuration
  (successful runs only; a repeated (configuration, seed) row is counted once and reported in ``duplicates``).
* :func:`seed_matrix`: one configuration family's metric as a (seed, n) matrix, with each run's test-estimate
  variance, for the statistics derived from curves (:mod:`reprjax.report.crossings`, :mod:`reprjax.report.exponents`,
  :mod:`reprjax.report.collapse`).
* :func:`run_status`, :func:`failure_lines`: failed runs and ridge strengths chosen at an edge of their grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from jaxtyping import Float

from reprjax.methods.contract import Metrics
from reprjax.methods.registry import outcome_columns, outcome_fields
from reprjax.sweep.grid import ROW_BOOKKEEPING

#: Columns of a results row that describe the run rather than identify its configuration: the seed and the store's
#: bookkeeping (:data:`reprjax.sweep.grid.ROW_BOOKKEEPING`).
RUN_BOOKKEEPING = ("seed", *ROW_BOOKKEEPING)
#: Outcome columns of the run contract (:class:`reprjax.methods.contract.Metrics`); a method may add typed outcomes
#: (:attr:`reprjax.methods.registry.Method.outcomes`), all of them in :func:`outcome_columns`.
METRICS = outcome_fields(Metrics)
STAT_COLUMNS = ("mean", "std", "count", "sem", "sem_seed", "sem_test", "duplicates")
GROUP_KEYS = ("method", "target", "d", "n")


def grid_columns(df: pd.DataFrame) -> list[str]:
    """Columns identifying a configuration: every column but the bookkeeping, the outcomes every registered method
    declares (plugins' included) and the statistics."""
    skip = set(RUN_BOOKKEEPING) | set(METRICS) | set(outcome_columns()) | set(STAT_COLUMNS)
    skip |= {se_column(c) for c in skip}  # an outcome's standard error is an outcome too
    return [c for c in df.columns if c not in skip]


def se_column(metric: str) -> str:
    """The column holding the standard error of each run's estimate of ``metric`` (``test_nmse_se``)."""
    return f"{metric}_se"


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of successful runs (failed runs are reported, never averaged)."""
    if df.empty or "status" not in df.columns:
        return df
    return df[df["status"] == "ok"]


def hashable_lists(df: pd.DataFrame) -> pd.DataFrame:
    """List-valued columns (tuple hyper-parameters read back from JSON) as tuples, so they can group."""
    lists = [c for c in df.columns if df[c].dtype == object and df[c].map(lambda v: isinstance(v, list)).any()]
    return df.assign(**{c: df[c].map(lambda v: tuple(v) if isinstance(v, list) else v) for c in lists}) if lists else df


def _varies(df: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` takes several values for one method (a per-method hyper-parameter, null for the other
    methods, does not vary)."""
    if "method" in df.columns and column != "method":
        return bool((df.groupby("method")[column].nunique(dropna=False) > 1).any())
    return df[column].nunique(dropna=False) > 1


def grid_keys(df: pd.DataFrame, by: Sequence[str] | None = None) -> list[str]:
    """``by`` (or every grid column) plus every other grid column that varies: nothing is averaged across them."""
    df = hashable_lists(df)
    cols = grid_columns(df)
    keys = [k for k in (by if by is not None else cols) if k in df.columns]
    return keys + [c for c in cols if c not in keys and _varies(df, c)]


def error_curves(df: pd.DataFrame, metric: str = "test_nmse", by: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, std, count (distinct seeds) and standard error of ``metric`` per configuration, successful runs only.

    What the standard error propagates: the seed mean's variance is the seed variance over ``count``.  Every seed
    draws its own target, training and test samples (one key per seed), so the seed-to-seed spread already holds
    each run's test-estimate noise; adding the test-estimate variance on top would count it twice.  At 3 seeds the
    seed variance is itself a rough estimate (2 degrees of freedom) and can come out below the test-estimate variance
    alone, which it cannot be in expectation; so ``sem = sqrt(max(std^2, mean(se^2)) / count)`` with ``se`` each
    run's test-estimate standard error (column ``<metric>_se``; taken as 0 where absent, in rows written before it
    existed).  ``sem_seed = std / sqrt(count)`` and ``sem_test = sqrt(mean(se^2) / count)`` are its two parts.

    Args:
      df: a results table.
      metric: the outcome column.
      by: grouping columns; grid columns not in ``by`` that vary are added (default: every grid column).
    """
    df = hashable_lists(df)
    keys = grid_keys(df, by)
    good = ok_rows(df)
    if good.empty or metric not in good.columns:
        return pd.DataFrame(columns=[*keys, *STAT_COLUMNS])
    seed = ["seed"] if "seed" in good.columns else []
    dupes = good.duplicated(subset=keys + seed, keep="last") if seed else pd.Series(False, index=good.index)
    kept = good[~dupes].assign(_test_var=_test_variance(good[~dupes], metric))
    grouped = kept.groupby(keys, dropna=False, sort=True)
    out = grouped[metric].agg(["mean", "std", "count"]).reset_index()
    test_var = grouped["_test_var"].mean().values
    count = np.sqrt(out["count"].clip(lower=1).values)
    out["sem"] = np.sqrt(np.maximum(out["std"].values ** 2, test_var)) / count  # nan with one seed: spread unknown
    out["sem_seed"] = out["std"] / count
    out["sem_test"] = np.sqrt(test_var) / count
    extra = good[dupes].groupby(keys, dropna=False).size().rename("duplicates").reset_index() if dupes.any() else None
    if extra is None:
        out["duplicates"] = 0
    else:
        out["duplicates"] = out.merge(extra, on=keys, how="left")["duplicates"].fillna(0).astype(int)
    return out


def _test_variance(rows: pd.DataFrame, metric: str) -> np.ndarray:
    """Each row's test-estimate variance of ``metric`` (0 where its standard error was not recorded)."""
    column = se_column(metric)
    if column not in rows.columns:
        return np.zeros(len(rows))
    return np.nan_to_num(pd.to_numeric(rows[column], errors="coerce").values.astype(float) ** 2)


def seed_matrix(rows: pd.DataFrame, metric: str = "test_nmse") -> tuple[Float[np.ndarray, " J"],
                                                                       Float[np.ndarray, "S J"],
                                                                       Float[np.ndarray, "S J"]]:
    """``(ns, values, test_var)`` of rows with one value per (seed, n), e.g. one configuration family at one
    ``d``: ``values[s, j]`` is seed ``s``'s ``metric`` at ``ns[j]`` (increasing; nan where that run failed or
    did not run; a repeated row counts once, the last), ``test_var[s, j]`` its test-estimate variance (0 where not
    recorded).  Without a ``seed`` column, the ``k``-th row at each ``n`` is seed ``k``."""
    rows = ok_rows(rows)
    seeds = rows["seed"].values if "seed" in rows.columns else rows.groupby("n").cumcount().values
    keep = ~pd.DataFrame(dict(s=seeds, n=rows["n"].values)).duplicated(keep="last").values
    seed_code, _ = pd.factorize(seeds[keep], sort=True)
    n_code, ns = pd.factorize(rows["n"].values[keep], sort=True)
    values = np.full((int(seed_code.max(initial=-1)) + 1, len(ns)), np.nan)
    test_var = np.zeros_like(values)
    values[seed_code, n_code] = pd.to_numeric(rows[metric], errors="coerce").values[keep]
    test_var[seed_code, n_code] = _test_variance(rows, metric)[keep]
    return np.asarray(ns, dtype=float), values, test_var


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
    keys = grid_keys(df, by)
    ok = df["status"] == "ok"
    errors = df["error"] if "error" in df.columns else pd.Series("", index=df.index)
    agg = hashable_lists(df.assign(_ok=ok, _error=errors)).groupby(keys, dropna=False).agg(
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
