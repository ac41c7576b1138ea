"""``n*``: the sample count at which an error curve falls to a threshold, with its standard error.

* :func:`crossing`: ``n*`` where a decreasing error curve first falls to a threshold (log-log interpolation between
  the bracketing grid points), or the bound the grid gives when it does not cross inside it: ``n* <= n_min`` when
  already below at the first point, ``n* > n_max`` when never below.
* :func:`crossings`: the same over many curves at once (bootstrap resamples), censored values at their bound.
* :func:`n_star_table`: ``n*`` per configuration (censored values as bounds) and the standard error of ``log n*``.

Standard error of ``log n*`` (the delta method): ``log n*`` is a function of the two seed means that bracket the
threshold; their covariance over seeds (a seed's errors at neighbouring ``n`` share its target, test set and nested
training data, so they are correlated) is carried through the gradient of the interpolation.  The seed spread already
holds each run's test-estimate noise (every seed draws its own test set), so the test-estimate variance
(``<metric>_se`` squared) is not added to it: it is the floor the variance cannot go below
(:func:`reprjax.report.tables.error_curves`).  ``log_n_star_se_test`` is the part from the test estimates alone.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from jaxtyping import Float, Int

from reprjax.report.tables import grid_keys, hashable_lists, ok_rows, seed_matrix

#: Columns of :func:`n_star_table` besides the configuration's.
N_STAR_COLUMNS = ("n_star", "censored", "n_star_text", "n_min", "n_max", "error_at_n_max", "log_n_star_se",
                  "log_n_star_se_test")


class Crossing(NamedTuple):
    """Where a curve meets the threshold: ``n_star`` (nan unless resolved) and the censoring."""

    n_star: float
    censored: str  # "" (resolved inside the grid), "below" (n* <= n_min), "above" (n* > n_max)
    bound: float  # n_star if resolved, else the grid end that bounds it
    index: int = -1  # the first grid point at or below the threshold (-1 if none)

    @property
    def text(self) -> str:
        texts = {"": f"{self.n_star:.4g}", "below": f"<= {self.bound:.4g}", "above": f"> {self.bound:.4g}"}
        return texts[self.censored]


def _check_threshold(threshold: float) -> None:
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")


def crossing(ns: Float[np.ndarray, " J"], errors: Float[np.ndarray, " J"], threshold: float) -> Crossing:
    """First ``n`` where ``errors`` (any order of ``ns``) falls to ``threshold``, log-log interpolated; censored
    when the grid does not bracket it (already below at the first point, or never below)."""
    _check_threshold(threshold)
    ns = np.asarray(ns, dtype=float)
    errors = np.asarray(errors, dtype=float)
    order = np.argsort(ns)
    ns, errors = ns[order], errors[order]
    below = np.nonzero(errors <= threshold)[0]
    if below.size == 0:
        return Crossing(math.nan, "above", float(ns[-1]))
    i = int(below[0])
    if i == 0:
        return Crossing(math.nan, "below", float(ns[0]), 0)
    log_n = crossings(ns, errors[None, :], threshold)[0][0]
    value = float(math.exp(log_n))
    return Crossing(value, "", value, i)


def crossings(ns: Float[np.ndarray, " J"], means: Float[np.ndarray, "B J"],
              threshold: float) -> tuple[Float[np.ndarray, " B"], Int[np.ndarray, " B"]]:
    """:func:`crossing` over the rows of ``means`` (``ns`` increasing): ``(log n*, side)`` with ``side`` 0 where
    resolved, -1 where already below at the first point and +1 where never below; censored rows get the log of their
    bound (the first or last ``n``), so a caller can never lose them by accident.  A nan point (every run there
    failed) is skipped; a row with no finite point gets nan and ``side`` 2."""
    _check_threshold(threshold)
    lx = np.log(np.asarray(ns, dtype=float))
    below = np.asarray(means) <= threshold
    first = np.argmax(below, axis=1)
    side = np.where(~below.any(axis=1), 1, np.where(first == 0, -1, 0))
    i = np.where(side == 0, first, 1)
    rows = np.arange(means.shape[0])
    y0 = np.log(np.maximum(means[rows, i - 1], 1e-300))
    y1 = np.log(np.maximum(means[rows, i], 1e-300))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y1 != y0, (math.log(threshold) - y0) / (y1 - y0), 1.0)
    out = lx[i - 1] + t * (lx[i] - lx[i - 1])
    out = np.where(side == 0, out, np.where(side < 0, lx[0], lx[-1]))
    for r in np.nonzero(~np.isfinite(means).all(axis=1))[0]:  # a point where every resampled run failed
        ok = np.isfinite(means[r])
        if ok.sum() == 0:
            out[r], side[r] = np.nan, 2
            continue
        cross = crossing(ns[ok], means[r, ok], threshold)
        out[r] = math.log(cross.bound)
        side[r] = {"": 0, "below": -1, "above": 1}[cross.censored]
    return out, side


def log_n_star_variance(ns: Float[np.ndarray, " J"], values: Float[np.ndarray, "S J"],
                        test_var: Float[np.ndarray, "S J"], threshold: float, index: int) -> tuple[float, float]:
    """Delta-method variance of ``log n*`` interpolated between ``ns[index - 1]`` and ``ns[index]``: ``(total,
    test part)``.

    ``values[s, j]`` is seed ``s``'s error at ``ns[j]`` (nan where that run failed), ``test_var`` its test-estimate
    variance.  The covariance of the two seed means is the seed covariance over ``s`` (paired seeds only) divided by
    ``s``; the result is floored at the variance the test estimates alone give (mean test-estimate variance over
    ``s`` at each point, taken as independent; module docstring).  nan when fewer than two seeds ran at both
    points.
    """
    cols = np.asarray(values, float)[:, index - 1:index + 1]
    tv = np.asarray(test_var, float)[:, index - 1:index + 1]
    paired = np.all(np.isfinite(cols), axis=1)
    s = int(paired.sum())
    if s < 2:
        return math.nan, math.nan
    cols, tv = cols[paired], np.nan_to_num(tv[paired])
    m = cols.mean(axis=0)
    if np.any(m <= 0):
        return math.nan, math.nan
    test = tv.mean(axis=0) / s
    cov = np.cov(cols, rowvar=False, ddof=1) / s
    y0, y1 = np.log(m)
    lt = math.log(threshold)
    dx = math.log(ns[index]) - math.log(ns[index - 1])
    if y1 == y0:
        return math.nan, math.nan
    grad = dx * np.array([(lt - y1), -(lt - y0)]) / (y1 - y0) ** 2 / m  # d log n* / d (mean0, mean1)
    floor = float(grad**2 @ test)
    return max(float(grad @ cov @ grad), floor), floor


def n_star_table(df: pd.DataFrame, threshold: float, metric: str = "test_nmse") -> pd.DataFrame:
    """``n*`` per configuration (every grid column but ``n``) from its seed-mean curve; censored values are nan in
    ``n_star`` with ``censored`` = ``below`` / ``above`` and the bound in ``n_star_text``; ``log_n_star_se`` is the
    standard error of ``log n*`` (seed and test-estimate variance, module docstring), ``log_n_star_se_test`` the part
    from the test estimates alone (nan where censored)."""
    good = hashable_lists(ok_rows(df))
    keys = [k for k in grid_keys(good) if k != "n"] if len(good) else []
    rows = []
    if len(good) and metric in good.columns:
        for values, sub in good.groupby(keys, dropna=False, sort=True):
            ns, mat, tv = seed_matrix(sub, metric)
            ran = np.isfinite(mat).any(axis=0)
            if not ran.any():
                continue
            ns, mat, tv = ns[ran], mat[:, ran], tv[:, ran]
            means = np.nanmean(mat, axis=0)
            cross = crossing(ns, means, threshold)
            var = log_n_star_variance(ns, mat, tv, threshold, cross.index) if cross.censored == "" else (
                math.nan, math.nan)
            rows.append(dict(zip(keys, values if isinstance(values, tuple) else (values,)), n_star=cross.n_star,
                             censored=cross.censored, n_star_text=cross.text, n_min=int(ns[0]), n_max=int(ns[-1]),
                             error_at_n_max=float(means[-1]), log_n_star_se=math.sqrt(max(var[0], 0.0)),
                             log_n_star_se_test=math.sqrt(max(var[1], 0.0))))
    out = pd.DataFrame(rows, columns=[*keys, *N_STAR_COLUMNS])
    # no row: typed columns all the same, so that a concat with another table keeps n_star numeric
    return out if rows else out.astype({c: float for c in N_STAR_COLUMNS if c not in ("censored", "n_star_text")})


__all__ = ["Crossing", "N_STAR_COLUMNS", "crossing", "crossings", "log_n_star_variance", "n_star_table"]
