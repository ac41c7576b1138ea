"""The exponent from all the points: the ``a`` that makes the error curves of every ``d`` one curve against ``n / d^a``.

If ``err(n, d) = F(n / d^a)``, the curves ``log err`` against ``x = log n - a log d`` of all dims coincide, and
``n*(d) ~ d^a`` at every threshold.  :func:`collapse_loss` measures how far they are from coinciding at a trial ``a``:
the mean squared distance, in ``log err``, between each curve's points and every other curve linearly interpolated
at them, over the points inside the other curve's range (the measure of data collapse of Bhattacharjee & Seno 2001,
J. Phys. A 34, 6375), each point weighted by how far inside that range it lies (0 at an end, 1 from one grid step
in): with a plain count the loss jumps wherever a point crosses a range's end, and a minimum pinned on such a jump
does not move under resampling (an interval of width ~0: docs/transfer.md, "The collapse interval at 2 seeds").
Unlike the slope of ``n*``, it uses every point of every curve, including the dims whose curve never crosses the
threshold inside the grid, and no threshold.

A trial ``a`` counts only when the curves are linked: the graph whose edges join two dims whose ranges overlap in at
least ``min_overlap`` points is connected (otherwise a far-off ``a`` with no overlap would have no loss at all).
:func:`fit_collapse` scans a grid of ``a`` and refines around the best point; a minimum on the first or
last linked grid point is at an edge (the grid of ``n`` cannot place the curves further apart) and is flagged.

Interval (:func:`bootstrap_collapse`): as for the slope of ``n*`` (:mod:`reprjax.report.exponents`): per ``d``, the
variance of the fitted ``a`` over resamples of that dim's seeds alone (the others at their seed means), times
``s / (s - 1)`` (a bootstrap over ``s`` seeds underestimates the sampling variance by ``(s - 1) / s``), floored at the
variance from the test estimates alone (the seed means perturbed by their test-estimate standard errors, where rows
carry them); the dims' variances add up; a Student t quantile with Welch-Satterthwaite degrees of freedom.
Resamples whose minimum sits at an edge are kept, at that edge, and counted (``edge``); when more than ``(1 -
level) / 2`` of them sit at one edge the interval is open on that side.  Coverage on synthetic tables:
docs/measurements.md, "Exponent intervals: coverage".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from jaxtyping import Bool, Float
from scipy import stats

#: Trial exponents scanned before the finer scan around the best one: 0 to 8 (an exponent outside is reported at
#: the edge), step 0.1 (docs/measurements.md, "Exponent intervals: coverage").
A_GRID = np.round(np.arange(0.0, 8.0 + 1e-9, 0.1), 10)
#: A curve enters the collapse when it falls by more than this many standard errors (:func:`falls`;
#: docs/measurements.md, "Exponent intervals: coverage").
FLAT_DROP = 5.0
#: A collapse whose loss exceeds this many times what seed noise alone gives is no collapse (:func:`misfit`: 99th
#: percentile 2.4 - 3.7 on synthetic power-law tables at 3 seeds; docs/measurements.md, "Exponent intervals").
MISFIT_LIMIT = 5.0


def collapse_loss(a: Float[np.ndarray, "B K"], log_ns: Sequence[Float[np.ndarray, " J"]],
                  log_dims: Float[np.ndarray, " D"], log_errors: Sequence[Float[np.ndarray, "B J"]],
                  min_overlap: int = 2) -> Float[np.ndarray, "B K"]:
    """Mean squared distance between the curves (module docstring) at each trial exponent; ``inf`` where unlinked.

    Args:
      a: trial exponents, one row per set of curves, or one row (or a 1-D grid) shared by every set.
      log_ns: per dim, ``log n`` of its grid (increasing).
      log_dims: ``log d`` per dim.
      log_errors: per dim, ``log err`` of each set of curves (``B`` rows, e.g. bootstrap resamples, or one row
        shared by every set); nan is skipped.
      min_overlap: points of one curve inside another's range that link the two.

    Memory: a few arrays of ``B x K x J`` floats per pair of dims at a time.
    """
    a = np.atleast_2d(np.asarray(a, float))
    rows = max(a.shape[0], *(y.shape[0] for y in log_errors))
    total = np.zeros((rows, a.shape[1]))
    count = np.zeros((rows, a.shape[1]))
    dims = len(log_ns)
    linked = np.zeros((rows, a.shape[1], dims, dims), bool)
    for i in range(dims):
        for j in range(dims):
            if i == j:
                continue
            lx, yj = log_ns[j], log_errors[j]
            q = log_ns[i][None, None, :] - a[:, :, None] * (log_dims[i] - log_dims[j])  # i's points on j's axis
            inside = (q >= lx[0]) & (q <= lx[-1])
            # a point enters j's range over one grid step of j (weight 0 at its ends, 1 a step inside): the loss is
            # continuous in a, so no minimum is pinned where a point crosses a range's end
            weight = np.clip(np.minimum(q - lx[0], lx[-1] - q) * ((len(lx) - 1) / (lx[-1] - lx[0])), 0.0, 1.0)
            k = np.clip(np.searchsorted(lx, q), 1, len(lx) - 1)
            t = (q - lx[k - 1]) / (lx[k] - lx[k - 1])
            if yj.shape[0] == 1:
                y0, y1 = yj[0][k - 1], yj[0][k]
            elif a.shape[0] == 1:
                y0, y1 = yj[:, k[0] - 1], yj[:, k[0]]
            else:
                y0, y1 = np.take_along_axis(yj[:, None, :], k - 1, -1), np.take_along_axis(yj[:, None, :], k, -1)
            diff = log_errors[i][:, None, :] - (y0 + t * (y1 - y0))
            ok = inside & np.isfinite(diff)
            w = np.where(ok, weight, 0.0)
            total += (w * np.square(np.where(ok, diff, 0.0))).sum(axis=-1)
            count += w.sum(axis=-1)
            linked[..., i, j] |= (w > 0).sum(axis=-1) >= min_overlap
    linked |= np.swapaxes(linked, -1, -2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(_connected(linked) & (count > 0), total / count, np.inf)


def _connected(linked: Bool[np.ndarray, "... D D"]) -> Bool[np.ndarray, "..."]:
    """Whether each graph (symmetric adjacency) is connected."""
    dims = linked.shape[-1]
    reach = (linked | np.eye(dims, dtype=bool)).astype(np.int64)
    for _ in range(max(1, math.ceil(math.log2(max(dims, 2))))):
        reach = np.minimum(reach @ reach, 1)
    return reach[..., 0, :].all(axis=-1).astype(bool)


def fit_collapse(log_ns: Sequence[Float[np.ndarray, " J"]], log_dims: Float[np.ndarray, " D"],
                 log_errors: Sequence[Float[np.ndarray, "B J"]], a_grid: Float[np.ndarray, " K"] = A_GRID,
                 min_overlap: int = 2, refine: int = 10) -> tuple[Float[np.ndarray, " B"], Float[np.ndarray, " B"]]:
    """The exponent minimising :func:`collapse_loss` for each row of curves: ``(a, edge)`` with ``edge`` -1 / +1
    where the minimum is on the first / last linked grid point (kept there: a bound, not a minimum), 0 inside, and
    ``a`` nan (``edge`` 0) where no grid point links the curves.  Inside, the grid cell around the best point is
    scanned again ``refine`` times finer and the best fine point is refined by the parabola through it and its
    neighbours."""
    loss = collapse_loss(a_grid, log_ns, log_dims, log_errors, min_overlap)
    finite = np.isfinite(loss)
    best = np.argmin(np.where(finite, loss, np.inf), axis=1)
    first = np.argmax(finite, axis=1)
    last = len(a_grid) - 1 - np.argmax(finite[:, ::-1], axis=1)
    edge = np.where(best == first, -1, np.where(best == last, 1, 0))
    lo, hi = a_grid[np.maximum(best - 1, first)], a_grid[np.minimum(best + 1, last)]
    fine = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, 2 * refine + 1)[None, :]
    floss = collapse_loss(fine, log_ns, log_dims, log_errors, min_overlap)
    k = np.clip(np.argmin(np.where(np.isfinite(floss), floss, np.inf), axis=1), 1, fine.shape[1] - 2)
    rows = np.arange(len(k))
    f0, f1, f2 = floss[rows, k - 1], floss[rows, k], floss[rows, k + 1]
    step = fine[rows, 1] - fine[rows, 0]
    curvature = f0 - 2 * f1 + f2
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(curvature > 0, 0.5 * (f0 - f2) / curvature, 0.0)
    a = np.where(edge == 0, fine[rows, k] + np.clip(np.nan_to_num(shift), -1, 1) * step, a_grid[best])
    valid = finite.any(axis=1)
    return np.where(valid, a, np.nan), np.where(valid, edge, 0)


def _resample(values: Float[np.ndarray, "S J"], test_var: Float[np.ndarray, "S J"], n_boot: int,
              rng: np.random.Generator) -> tuple[Float[np.ndarray, "B J"], Float[np.ndarray, "B J"] | None]:
    """``log`` seed means of ``n_boot`` seed resamples, and of the seed means perturbed by their test-estimate
    standard errors alone (``None`` where no row carries one)."""
    s = values.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column of failed runs only: nan, as wanted
        boot = np.log(np.nanmean(values[rng.integers(0, s, size=(n_boot, s))], axis=1))
        means = np.nanmean(values, axis=0)
        sem = np.sqrt(np.nanmean(np.where(np.isfinite(values), test_var, np.nan), axis=0)
                      / np.isfinite(values).sum(axis=0).clip(1))
    if not np.any(sem > 0):
        return boot, None
    return boot, np.log(means) + rng.standard_normal((n_boot, values.shape[1])) * (sem / means)


def falls(values: Float[np.ndarray, "S J"], drop: float = FLAT_DROP) -> bool:
    """Whether a curve (``values[s, j]``: seed ``s`` at the ``j``-th ``n``) falls by more than ``drop`` standard
    errors of its log seed means (pooled over its points) between its highest and lowest point: a flat curve (a
    method that learns nothing on the grid) carries no scale and only adds noise to the collapse."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(values, axis=0)
        seeds = np.isfinite(values).sum(axis=0)
        rel = np.nanstd(values, axis=0, ddof=1) / np.sqrt(seeds) / means
        log_means = np.log(means[np.isfinite(means) & (means > 0)])
        pooled = float(np.sqrt(np.nanmean(rel[seeds > 1] ** 2))) if np.any(seeds > 1) else 0.0
    if log_means.size < 2:
        return False
    return float(np.ptp(log_means)) > drop * (pooled if math.isfinite(pooled) else 0.0)


def misfit(log_ns: Sequence[Float[np.ndarray, " J"]], log_dims: Float[np.ndarray, " D"],
           curves: Sequence[Float[np.ndarray, "S J"]], a: float, min_overlap: int = 2) -> float:
    """The collapse loss at ``a`` over what the seed noise alone would give: twice the mean variance of a log seed
    mean (two curves' points differ by both their errors), each point's variance its seed variance over ``s``.
    About 1 when the curves fall on one curve up to noise; nan without a seed spread."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = [np.nanmean(v, axis=0) for v in curves]
        rel = np.concatenate([np.nanvar(v, axis=0, ddof=1) / np.isfinite(v).sum(axis=0) / m**2
                              for v, m in zip(curves, means)])
        noise = 2.0 * float(np.nanmean(rel))
    loss = float(collapse_loss(np.array([a]), log_ns, log_dims, [np.log(m)[None, :] for m in means],
                               min_overlap)[0, 0])
    return loss / noise if noise > 0 and math.isfinite(noise) else math.nan


def bootstrap_collapse(curves: Sequence[tuple[float, Float[np.ndarray, " J"], Float[np.ndarray, "S J"],
                                              Float[np.ndarray, "S J"]]], n_boot: int = 200, seed: int = 0,
                       level: float = 0.95, a_grid: Float[np.ndarray, " K"] = A_GRID,
                       min_overlap: int = 2) -> dict[str, float]:
    """The collapse exponent of one configuration family with a t interval (module docstring).

    Args:
      curves: per dim, ``(d, ns, values, test_var)`` (:func:`reprjax.report.tables.seed_matrix`).
      n_boot: resamples per dim (and as many test-noise draws where rows carry test-estimate errors).
      seed: the resampling generator's seed.
      level: the interval's coverage.

    Returns:
      ``collapse`` (nan unless at least two dims with two points each are linked), ``collapse_low``,
      ``collapse_high`` (inf / -inf on an open side), ``collapse_dims`` (the dims fitted), ``collapse_edge`` (share
      of resamples at an edge, or the fit itself at one: 1.0), ``collapse_dof``, ``collapse_flat`` (the dims left
      out because their curve does not fall, :func:`falls`), ``collapse_misfit`` (:func:`misfit` at the fit).
    """
    curves = [(d, np.asarray(ns, float), np.asarray(v, float), np.asarray(t, float)) for d, ns, v, t in curves]
    curves = [c for c in curves if np.isfinite(c[2]).any(axis=0).sum() >= 2]
    flat = [c for c in curves if not falls(c[2])]
    curves = [c for c in curves if falls(c[2])]
    out = dict(collapse=math.nan, collapse_low=math.nan, collapse_high=math.nan, collapse_dims=len(curves),
               collapse_edge=0.0, collapse_dof=math.nan, collapse_misfit=math.nan,
               collapse_flat=", ".join(f"{c[0]:g}" for c in flat))
    if len(curves) < 2:
        return out
    log_ns = [np.log(ns) for _, ns, _, _ in curves]
    log_dims = np.log([float(d) for d, *_ in curves])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = [np.log(np.nanmean(v, axis=0))[None, :] for _, _, v, _ in curves]
    a_hat, edge = fit_collapse(log_ns, log_dims, full, a_grid, min_overlap)
    out.update(collapse=float(a_hat[0]), collapse_edge=float(edge[0] != 0))
    if math.isfinite(a_hat[0]):
        out["collapse_misfit"] = misfit(log_ns, log_dims, [v for _, _, v, _ in curves], float(a_hat[0]), min_overlap)
    seeds = [int(np.isfinite(v).any(axis=1).sum()) for _, _, v, _ in curves]
    if not math.isfinite(a_hat[0]) or edge[0] != 0 or n_boot < 2 or min(seeds) < 2:
        return out
    rng = np.random.default_rng(seed)
    parts, edges = [], []
    for i, (_, _, values, test_var) in enumerate(curves):
        ran = np.isfinite(values).any(axis=1)
        boot, noise = _resample(values[ran], test_var[ran], n_boot, rng)
        s = seeds[i]
        var = []
        for draws, scale in ((boot, s / (s - 1)), (noise, 1.0)):
            if draws is None:
                continue
            ys = list(full)
            ys[i] = draws
            a, e = fit_collapse(log_ns, log_dims, ys, a_grid, min_overlap)
            edges.append(np.where(np.isnan(a), 2, e))
            var.append(float(np.nanvar(a, ddof=1)) * scale if np.isfinite(a).sum() > 1 else math.inf)
        parts.append(max(var))
    edges_all = np.concatenate(edges)
    total = float(np.sum(parts))
    if not math.isfinite(total):
        out.update(collapse_low=-math.inf, collapse_high=math.inf, collapse_edge=float(np.mean(edges_all != 0)))
        return out
    dof = total**2 / float(np.sum(np.square(parts) / (np.asarray(seeds) - 1))) if total > 0 else float(min(seeds) - 1)
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * math.sqrt(total)
    tail = (1 - level) / 2
    low = -math.inf if np.mean((edges_all == -1) | (edges_all == 2)) > tail else a_hat[0] - half
    high = math.inf if np.mean((edges_all == 1) | (edges_all == 2)) > tail else a_hat[0] + half
    out.update(collapse_low=float(low), collapse_high=float(high), collapse_edge=float(np.mean(edges_all != 0)),
               collapse_dof=dof)
    return out


__all__ = ["A_GRID", "FLAT_DROP", "MISFIT_LIMIT", "bootstrap_collapse", "collapse_loss", "falls", "fit_collapse",
           "misfit"]
