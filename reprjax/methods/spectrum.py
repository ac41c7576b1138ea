"""Hermite spectrum of a predictor: what it learned, degree by degree, inside ``span(U)`` and outside it.

For ``x ~ N(0, I_d)`` write ``z = U x`` (``U`` with orthonormal rows).  Any square-integrable ``f`` splits as
``f = E[f | z] + f_perp`` and ``E[f | z] = sum_alpha c_alpha h_alpha(z)`` with ``c_alpha = E[f(x) h_alpha(U x)]``
(docs/setting.md, "Inputs, targets and labels").  The spectrum reports, up to a degree ``K``:

* ``energy[k] = sum_{|alpha| = k} c_alpha^2`` for ``k = 0..K``;
* ``in_span = E[E[f | z]^2]``, ``higher = in_span - sum_k energy[k]`` (degrees above ``K``);
* ``perp = E[f^2] - in_span = E[f_perp^2]``: the energy outside functions of ``U x``.

Monte Carlo with paired samples sharing ``z``: ``x_i = U^T z + P_perp g_i`` (``i = 1, 2``, ``g_i`` independent), so
``E[f(x_1) f(x_2)] = in_span`` and ``E[(f(x_1) - f(x_2))^2] / 2 = perp`` without bias; each ``c_alpha^2`` is
corrected by its estimated variance over ``n`` so that ``energy`` is unbiased too.  Standard errors come with
every number.  Memory: one chunk of ``2 chunk x d`` inputs at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.maths.hermite import multi_index_hermite
from reprjax.problem.targets import all_multi_indices

Alphas = tuple[tuple[int, ...], ...]


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
) -> Spectrum:
    """The spectrum of ``predict`` against ``span(U)`` up to ``degree`` by paired Monte Carlo (module docstring).

    Args:
      key: PRNG key for the samples (chunk ``c`` uses ``fold_in(key, c)``).
      predict: batched predictor ``x (n, d) -> f(x) (n,)``.
      U: ``(r, d)`` with orthonormal rows.
      degree: largest Hermite degree ``K`` (>= 0).
      n_samples: number of pairs (>= 2).
      chunk: pairs per chunk.

    Returns:
      A :class:`Spectrum`; ``energy`` has ``degree + 1`` entries.
    """
    n = _validate.check_int("n_samples", n_samples, low=2)
    _validate.check_int("chunk", chunk, low=1)
    r, d = U.shape
    alphas = multi_indices_up_to(r, degree)
    deg = jnp.asarray([sum(a) for a in alphas])
    chunk = min(chunk, n)
    n_chunks = -(-n // chunk)

    def one(c):
        kz, k1, k2 = jax.random.split(jax.random.fold_in(key, c), 3)
        z = jax.random.normal(kz, (chunk, r), jnp.float32)
        valid = ((c * chunk + jnp.arange(chunk)) < n).astype(jnp.float32)

        def perp(k):
            g = jax.random.normal(k, (chunk, d), jnp.float32)
            return g - (g @ U.T) @ U

        base = z @ U
        f1, f2 = predict(base + perp(k1)), predict(base + perp(k2))
        h = multi_index_hermite(z, alphas) * valid[:, None]
        fh = 0.5 * (f1 + f2)[:, None] * h
        moments = jnp.stack([f1 * f2, 0.5 * (f1 - f2) ** 2, 0.5 * (f1**2 + f2**2)], axis=1) * valid[:, None]
        return jnp.sum(fh, 0), jnp.sum(fh**2, 0), jnp.sum(moments, 0), jnp.sum(moments**2, 0)

    zeros = (jnp.zeros(len(alphas)), jnp.zeros(len(alphas)), jnp.zeros(3), jnp.zeros(3))
    s1, s2, m1, m2 = jax.lax.fori_loop(0, n_chunks, lambda c, acc: jax.tree.map(jnp.add, acc, one(c)), zeros)
    coeffs = s1 / n
    var = jnp.maximum(s2 / n - coeffs**2, 0.0) * n / (n - 1)
    per_alpha = coeffs**2 - var / n
    onehot = (deg[None, :] == jnp.arange(degree + 1)[:, None]).astype(jnp.float32)
    energy = onehot @ per_alpha
    energy_se = jnp.sqrt(onehot @ (4.0 * coeffs**2 * var / n + 2.0 * (var / n) ** 2))
    means = m1 / n
    se = jnp.sqrt(jnp.maximum(m2 / n - means**2, 0.0) / (n - 1))
    return Spectrum(energy=energy, energy_se=energy_se, coeffs=coeffs, coeffs_se=jnp.sqrt(var / n),
                    in_span=means[0], in_span_se=se[0], perp=means[1], perp_se=se[1], total=means[2], alphas=alphas)
