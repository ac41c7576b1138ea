"""The report lines of an exponent table (:func:`reprjax.report.exponents.exponent_table`), shared by every study.

One family, two lines: the slope of ``n*`` against ``d`` and the collapse of every point.  The slope line states the
exponent only where :func:`reprjax.report.exponents.answer` makes it the answer: ``not fitted (k of K dims
resolved)`` where fewer than two dims cross the threshold inside the grid, the one-sided bound of all dims where
that is all that is known or where the fit over the resolved dims lies on the wrong side of it; the unresolved dims
are always named with their bounds.  A value is never printed for a number that was not measured.
"""

from __future__ import annotations

import math

import pandas as pd

from reprjax.report.collapse import MISFIT_LIMIT
from reprjax.report.exponents import EXPONENT_COLUMNS, answer

#: Columns a report line does not use as the family's label.
_NOT_LABELS = (*EXPONENT_COLUMNS, "theory", "threshold", "log_n_star_se", "log_n_star_se_test")


def _interval(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "(no interval: fewer than 2 seeds)"
    left = "(-inf" if low == -math.inf else f"[{low:.3g}"
    right = "inf)" if high == math.inf else f"{high:.3g}]"
    return f"{left}, {right}"


def _bound(row: pd.Series) -> str:
    return f"exponent {'>=' if row['bound_kind'] == 'lower' else '<='} {row['bound']:.3g}"


def _side(row: pd.Series) -> str:
    """Where a value that contradicts the bound lies: below a lower bound, above an upper one."""
    return "below" if row["bound_kind"] == "lower" else "above"


def slope_text(row: pd.Series, total_dims: int | None = None) -> str:
    """The slope of ``n*``: the fit with its interval, the bound, or "not fitted (k of K dims resolved)"; the
    unresolved dims with their bounds; the share of resamples censored."""
    k = int(row["dims_resolved"])
    total = int(row["dims_total"]) if total_dims is None else int(total_dims)
    resolved = f"{k} of {total} dims resolved"
    fitted = math.isfinite(float(row["exponent"]))
    fit = f"{row['exponent']:.3g} {_interval(row['low'], row['high'])}" if fitted else ""
    chosen = row["answer"] if "answer" in row.index and isinstance(row["answer"], str) else answer(row)
    if chosen == "slope":
        text = f"{fit} over {resolved}"
        if row["bound_kind"]:
            text += f"; all dims at their bounds: {_bound(row)}"
    elif chosen == "bound" and fitted:
        text = (f"{_bound(row)} (all dims at their bounds); the fit over the {resolved}, {fit}, lies "
                f"{_side(row)} this bound and is not the exponent")
    elif chosen == "bound":
        text = f"{_bound(row)} (all dims at their bounds); not fitted ({resolved})"
    else:
        text = f"not fitted ({resolved})"
    if row["unresolved_dims"]:
        text += f"; unresolved: {row['unresolved_dims']}"
    if fitted and row["unresolved"]:
        text += f"; resamples censored {row['unresolved']:.0%} (kept at their bounds)"
    return text


def collapse_text(row: pd.Series) -> str:
    """The collapse exponent with its interval over how many dims, or why there is none."""
    flat = row["collapse_flat"] if "collapse_flat" in row.index and isinstance(row["collapse_flat"], str) else ""
    left_out = f"; d={flat}: the curve does not fall, left out" if flat else ""
    dims = int(row["collapse_dims"])
    if not math.isfinite(float(row["collapse"])):
        why = "the curves do not overlap" if dims >= 2 else "fewer than 2 dims with a falling curve"
        return f"not fitted ({why}){left_out}"
    if row["collapse_edge"] == 1.0 and not math.isfinite(float(row["collapse_low"])):
        return f"at the edge of what the grid can place: {row['collapse']:.3g} (a bound, not a minimum){left_out}"
    text = f"{row['collapse']:.3g} {_interval(row['collapse_low'], row['collapse_high'])} from every point of " \
           f"{dims} dims{left_out}"
    bad = float(row["collapse_misfit"]) if "collapse_misfit" in row.index else math.nan
    if math.isfinite(bad):
        text += f"; misfit {bad:.2g}"
        if bad > MISFIT_LIMIT:
            text += " (the curves do not fall on one curve: their distance is that many times the seed noise)"
    if row["collapse_edge"]:
        text += f"; resamples at an edge {row['collapse_edge']:.0%} (kept there)"
    kind = row["bound_kind"]
    if (kind == "lower" and row["collapse"] < row["bound"]) or (kind == "upper" and row["collapse"] > row["bound"]):
        text += f"; {_side(row)} the bound ({_bound(row)}): the curves are not one power law over the grid"
    return text


def exponent_lines(exponents: pd.DataFrame, total_dims: int | None = None) -> list[str]:
    """Report lines per family: its label (method and any other varying column), the slope of ``n*`` and the
    collapse, and the ``theory`` column where the table has one.

    Args:
      exponents: an exponent table (:func:`reprjax.report.exponents.exponent_table`, or rows of
        :func:`reprjax.report.exponents.family_exponents`).
      total_dims: the study's number of dims (default: the dims with rows).
    """
    lines = []
    extra = [c for c in exponents.columns if c not in _NOT_LABELS]
    for _, row in exponents.iterrows():
        label = str(row["method"]) + "".join(f" {k}={row[k]}" for k in extra if pd.notna(row[k]))
        lines.append(f"  {label:16s} slope of n*: {slope_text(row, total_dims)}")
        if "collapse" in row.index and "collapse_dims" in row.index:
            lines.append(f"  {'':16s} collapse:    {collapse_text(row)}")
        if "theory" in row.index and row["theory"]:
            lines.append(f"  {'':16s} theory:      {row['theory']}")
    return lines


__all__ = ["collapse_text", "exponent_lines", "slope_text"]
