"""Stratified Gaussian sampling with paired strata: unbiased means of ``F(z)``, ``z ~ N(0, I_r)``, and their variance.

The first ``s = min(r, 3)`` coordinates of ``z`` are stratified: each axis is cut into ``K`` intervals of equal
Gaussian probability (edges ``Phi^{-1}(j / K)``), the ``K^s`` boxes are the strata, and each stratum receives
``2`` independent points, drawn from ``N(0, 1)`` conditioned on the box (inverse-CDF sampling of a uniform jitter);
the other ``r - s`` coordinates are plain ``N(0, 1)`` draws.  With stratum probability ``p_k = K^{-s}``,

    mean = sum_k p_k (F(z_k1) + F(z_k2)) / 2,          var = sum_k p_k^2 (F(z_k1) - F(z_k2))^2 / 4,

``mean`` is unbiased for ``E[F(z)]`` (every point is marginally ``N(0, I_r)``-distributed within its stratum and the
strata weights are their probabilities) and ``var`` is unbiased for its variance (Cochran, *Sampling Techniques*,
1977, section 5.3; two points per stratum is the smallest design with an unbiased variance).  Proportional
stratification never has a larger variance than plain Monte Carlo with the same number of points and removes, for
a smooth ``F``, all but its variation inside a box: a polynomial of ``z`` in the bulk, and only the tails' boxes
beyond.  Everything ``F`` does not owe to ``z`` (in :mod:`reprjax.methods.scoring` the orthogonal complement of
``span(U)``) keeps its plain Monte Carlo variance.  Several quantities share one design: the estimates come with
their covariance matrix, so ratios and differences get a delta-method error.

Measured variance reduction on the paper's target: docs/test_error_estimation.md.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri
from jaxtyping import Array, Float, Int, PRNGKeyArray

#: Most coordinates of ``z`` stratified (``K^s`` strata: more axes leave too few strata per axis).
STRATIFIED_AXES = 3
#: Points per stratum (two: the fewest that give an unbiased variance).
PER_STRATUM = 2


@dataclasses.dataclass(frozen=True)
class StratifiedDesign:
    """``per_axis^axes`` strata over the first ``axes`` of ``r`` coordinates, two points each.

    The per-axis cells have equal probability under ``N(0, spread^2)`` (edges ``spread Phi^{-1}(j / K)``): ``spread =
    1`` is proportional stratification; a larger spread gives the tails more, smaller cells (module docstring).
    Point ``i`` (``0 <= i < size``) lies in stratum ``i // 2``; the strata are numbered in row-major order of their
    per-axis cells.
    """

    r: int
    axes: int
    per_axis: int
    spread: float = 1.0

    @property
    def strata(self) -> int:
        return self.per_axis**self.axes

    @property
    def size(self) -> int:
        """Number of points ``2 K^s``."""
        return PER_STRATUM * self.strata

    def lower_tail_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)``: for cell ``j`` of the lower half (``2 j < K``, mirrored for the upper half), the standard
        normal probabilities below its two edges (float64)."""
        K = self.per_axis
        half = (K + 1) // 2
        dist = statistics.NormalDist()
        edges = [self.spread * dist.inv_cdf(j / K) for j in range(1, half)]
        cdf = [0.0] + [0.5 * math.erfc(-e / math.sqrt(2.0)) for e in edges]
        cdf.append(1.0 - cdf[-1] if K % 2 else 0.5)  # an odd K's middle cell straddles 0: mirrored edges
        cdf = np.asarray(cdf)
        return cdf[:half], cdf[1:half + 1]


def stratified_design(budget: int, r: int, spread: float = 1.0) -> StratifiedDesign:
    """The largest design with at most ``budget`` points (``K = floor((budget / 2)^(1/s))`` per axis, ``K >= 1``).

    ``K = 1`` (``budget < 2 ** (s + 1)``) is plain Monte Carlo in pairs.  The design has between
    ``budget (1 - s / K)`` and ``budget`` points (``K >= 2``), ``budget`` exactly for ``r = 1`` and an even budget.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 2:
        raise ValueError(f"budget must be an integer >= 2 (two points per stratum), got {budget!r}")
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
        raise ValueError(f"r must be an integer >= 1, got {r!r}")
    axes = min(int(r), STRATIFIED_AXES)
    k = max(1, int(math.floor((budget // PER_STRATUM) ** (1.0 / axes))))
    while (k + 1) ** axes * PER_STRATUM <= budget:  # floating-point roots fall just short of exact powers
        k += 1
    while k > 1 and k**axes * PER_STRATUM > budget:
        k -= 1
    return StratifiedDesign(r=int(r), axes=axes, per_axis=k, spread=float(spread))


def stratified_normal(
    key: PRNGKeyArray, design: StratifiedDesign, index: Int[Array, " n"]
) -> tuple[Float[Array, "n r"], Float[Array, " n"]]:
    """``z`` for the design's points ``index`` and each point's stratum probability ``p_k``.

    Within a stratum each stratified coordinate is ``Phi^{-1}(u)`` with ``u`` uniform on its cell, computed from
    the lower tail (``-Phi^{-1}(1 - u)`` in the upper half) so that float32 keeps the far tail's precision.

    Args:
      key: PRNG key for this block of points (uniform jitter and the unstratified coordinates).
      design: the design; index: point indices in ``[0, design.size)`` (may be traced).

    Returns:
      ``(z, p)``: ``(n, r)`` float32 points and ``(n,)`` stratum probabilities.
    """
    K, s, r = design.per_axis, design.axes, design.r
    lo_np, hi_np = design.lower_tail_cells()
    k_u, k_z = jax.random.split(key)
    stratum = jnp.asarray(index) // PER_STRATUM
    cells = (stratum[:, None] // (K ** jnp.arange(s - 1, -1, -1))[None, :]) % K  # (n, s), row-major
    upper = 2 * cells >= K  # mirror the upper half onto the lower tail
    low_cell = jnp.where(upper, K - 1 - cells, cells)
    lo, hi = jnp.asarray(lo_np, jnp.float32)[low_cell], jnp.asarray(hi_np, jnp.float32)[low_cell]
    v = jax.random.uniform(k_u, cells.shape, jnp.float32)
    u = jnp.clip(lo + v * (hi - lo), jnp.finfo(jnp.float32).tiny, 1.0)
    zs = jnp.where(upper, -ndtri(u), ndtri(u))
    if r > s:
        zs = jnp.concatenate([zs, jax.random.normal(k_z, (zs.shape[0], r - s), jnp.float32)], axis=1)
    width = jnp.asarray(hi_np - lo_np, jnp.float32)[low_cell]
    return zs, jnp.prod(width, axis=1)


def paired_sums(
    values: Float[Array, "n q"], p: Float[Array, " n"], valid: Float[Array, " n"]
) -> tuple[Float[Array, " q"], Float[Array, "q q"]]:
    """Contributions of a block of whole pairs to ``mean`` and to the covariance of ``mean`` (module docstring).

    Args:
      values: ``F`` at the block's points, consecutive rows ``(2j, 2j + 1)`` in one stratum; ``q`` quantities.
      p: stratum probability of each point; valid: 1 for points of the design, 0 for padding (whole pairs).

    Returns:
      ``(sum_k p_k (F_k1 + F_k2) / 2, sum_k p_k^2 D_k D_k^T / 4)`` over the block's strata, ``D_k = F_k1 - F_k2``.
    """
    n, q = values.shape
    if n % PER_STRATUM:
        raise ValueError(f"a block must hold whole pairs of points, got {n} rows")
    w = (p * valid)[:, None]
    mean = jnp.sum(w * values, axis=0) / PER_STRATUM
    pairs = values.reshape(n // 2, 2, q)
    diff = (pairs[:, 0] - pairs[:, 1]) * (p * valid).reshape(n // 2, 2)[:, :1]
    return mean, diff.T @ diff / 4.0


__all__ = ["PER_STRATUM", "STRATIFIED_AXES", "StratifiedDesign", "paired_sums", "stratified_design",
           "stratified_normal"]
