"""Hermite spectrum of a predictor: what it learned, degree by degree, inside ``span(U)`` and outside it.

For ``x ~ N(0, I_d)`` write ``z = U x`` (``U`` with orthonormal rows).  Any square-integrable ``f`` splits as
``f = E[f | z] + f_perp`` and ``E[f | z] = sum_alpha c_alpha h_alpha(z)`` with ``c_alpha = E[f(x) h_alpha(U x)]``
(docs/setting.md, "Inputs, targets and labels").  The spectrum reports, up to a degree ``K``:

* ``energy[k] = sum_{|alpha| = k} c_alpha^2`` for ``k = 0..K``;
* ``in_span = E[E[f | z]^2]``, ``higher = in_span - sum_k energy[k]`` (degrees above ``K``);
* ``perp = E[f^2] - in_span = E[f_perp^2]``: the energy outside functions of ``U x``.

The latent ``z`` is drawn from a stratified design (:mod:`reprjax.maths.stratified`: two points in each stratum of
the first ``min(r, 3)`` coordinates, the tails given more, smaller strata), a randomised quadrature over
``span(U)`` that stays unbiased for a predictor that is not a polynomial (a ReLU network's kinks make a fixed
Gauss-Hermite rule biased).  At each ``z`` two inputs share it: ``x_i = U^T z + P_perp g_i`` (``i = 1, 2``, ``g_i``
independent), so ``E[f(x_1) f(x_2)] = in_span`` and ``E[(f(x_1) - f(x_2))^2] / 2 = perp`` without bias.  The design's
unbiased covariance of the coefficient estimates corrects each ``c_alpha^2`` (``energy`` is unbiased too) and gives
every number its standard error.  Memory: one chunk of ``2 chunk x d`` inputs at a time.  Measured standard errors
against plain Monte Carlo: docs/test_error_estimation.md.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.maths.hermite import multi_index_hermite
from reprjax.maths.stratified import paired_sums, stratified_design, stratified_normal
from reprjax.problem.targets import all_multi_indices

Alphas = tuple[tuple[int, ...], ...]

#: Spread of the strata over ``z`` (:class:`reprjax.maths.stratified.StratifiedDesign`), as for the test error
#: (docs/test_error_estimation.md).
SPECTRUM_SPREAD = 2.0


@struct.dataclass
class Spectrum:
    """The Hermite spectrum of a predictor (module docstring), with standard errors."""

    energy: Float[Array, " K1"]
    energy_se: Float[Array, " K1"]
    coeffs: Float[Array, " T"]
    coeffs_se: Float[Array, " T"]
    in_span: Float[Array, ""]
    in_span_se: Float[Array, ""]
    perp: Float[Array, ""]
    perp_se: Float[Array, ""]
    total: Float[Array, ""]
    alphas: Alphas = struct.field(pytree_node=False)

    @property
    def higher(self) -> Float[Array, ""]:
        """Energy in ``span(U)`` above the largest degree computed."""
        return self.in_span - jnp.sum(self.energy)


def multi_indices_up_to(r: int, degree: int) -> Alphas:
    """All multi-indices of length ``r`` and total degree ``0..degree``, by degree."""
    _validate.check_int("r", r, low=1)
    _validate.check_int("degree", degree, low=0)
    return tuple(a for k in range(degree + 1) for a in all_multi_indices(r, k))


def hermite_spectrum(
    key: PRNGKeyArray,
    predict: Callable[[Float[Array, "n d"]], Float[Array, " n"]],
    U: Float[Array, "r d"],
    degree: int = 4,
    n_samples: int = 8192,
    chunk: int = 2048,
    spread: float = SPECTRUM_SPREAD,
) -> Spectrum:
    """The spectrum of ``predict`` against ``span(U)`` up to ``degree`` (module docstring).

    Args:
      key: PRNG key for the samples (chunk ``c`` uses ``fold_in(key, c)``).
      predict: batched predictor ``x (n, d) -> f(x) (n,)``.
      U: ``(r, d)`` with orthonormal rows.
      degree: largest Hermite degree ``K`` (>= 0).
      n_samples: at most this many latent points, each with a pair of inputs (>= 2; ``2 K^min(r, 3)`` of them,
        :func:`reprjax.maths.stratified.stratified_design`).
      chunk: latent points per chunk (>= 2).
      spread: the strata's spread (1: proportional strata).

    Returns:
      A :class:`Spectrum`; ``energy`` has ``degree + 1`` entries.
    """
    n = _validate.check_int("n_samples", n_samples, low=2)
    _validate.check_int("chunk", chunk, low=2)
    _validate.check_number("spread", spread, low=0.0, low_open=True)
    r, d = U.shape
    alphas = multi_indices_up_to(r, degree)
    T = len(alphas)
    deg = np.asarray([sum(a) for a in alphas])
    design = stratified_design(n, r, spread)
    size = design.size
    chunk = min(chunk - chunk % 2, size)
    n_chunks = -(-size // chunk)

    def one(c):
        kz, k1, k2 = jax.random.split(jax.random.fold_in(key, c), 3)
        index = c * chunk + jnp.arange(chunk)
        valid = (index < size).astype(jnp.float32)
        z, p = stratified_normal(kz, design, index)

        def perp(k):
            g = jax.random.normal(k, (chunk, d), jnp.float32)
            return g - (g @ U.T) @ U

        base = z @ U
        f1, f2 = predict(base + perp(k1)), predict(base + perp(k2))
        fh = 0.5 * (f1 + f2)[:, None] * multi_index_hermite(z, alphas)
        moments = jnp.stack([f1 * f2, 0.5 * (f1 - f2) ** 2, 0.5 * (f1**2 + f2**2)], axis=1)
        values = jnp.where(valid[:, None] > 0, jnp.concatenate([fh, moments], axis=1), 0.0)
        return paired_sums(values, p, valid)

    zeros = (jnp.zeros(T + 3, jnp.float32), jnp.zeros((T + 3, T + 3), jnp.float32))
    mean, cov = jax.lax.fori_loop(0, n_chunks, lambda c, acc: jax.tree.map(jnp.add, acc, one(c)), zeros)
    coeffs, cov_c = mean[:T], cov[:T, :T]
    var = jnp.maximum(jnp.diagonal(cov_c), 0.0)
    energy, energy_var = [], []
    for k in range(degree + 1):
        sel = np.flatnonzero(deg == k)
        c_k, cov_k = coeffs[sel], cov_c[np.ix_(sel, sel)]
        energy.append(jnp.sum(c_k**2) - jnp.sum(var[sel]))  # E[c_hat^2] = c^2 + var: unbiased
        energy_var.append(4.0 * c_k @ cov_k @ c_k + 2.0 * jnp.sum(cov_k**2))  # Gaussian quadratic form
    se = jnp.sqrt(jnp.maximum(jnp.diagonal(cov)[T:], 0.0))
    return Spectrum(energy=jnp.stack(energy), energy_se=jnp.sqrt(jnp.maximum(jnp.stack(energy_var), 0.0)),
                    coeffs=coeffs, coeffs_se=jnp.sqrt(var), in_span=mean[T], in_span_se=se[0], perp=mean[T + 1],
                    perp_se=se[1], total=mean[T + 2], alphas=alphas)
