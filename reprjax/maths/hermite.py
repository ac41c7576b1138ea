"""Normalised probabilists' Hermite polynomials and Gaussian quadrature.

The normalised Hermite polynomials ``h_k = He_k / sqrt(k!)`` are orthonormal under the standard Gaussian,
``E_{z ~ N(0, 1)}[h_j(z) h_k(z)] = delta_jk``; products over coordinates, ``h_alpha(z) = prod_i h_{alpha_i}(z_i)``,
form an orthonormal basis of polynomials on ``R^r`` under ``N(0, I_r)`` (docs/setting.md, "Inputs, targets and labels").

All values come from the stable three-term recurrence on the normalised polynomials,

    h_0 = 1,  h_1 = z,  h_{k+1} = (z h_k - sqrt(k) h_{k-1}) / sqrt(k + 1),

which never forms the huge integers of ``He_k`` or ``k!``.  Derivatives follow from ``h_k' = sqrt(k) h_{k-1}``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

#: The largest Hermite degree the toolkit supports.  Values of ``h_k`` for ``k <= 16`` stay accurate in float32
#: on the range where a Gaussian puts its mass; targets and quadrature reject larger degrees.
MAX_DEGREE = 16


def _check_degree(name: str, k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"{name} must be an integer in [0, {MAX_DEGREE}], got {k!r}")
    if not 0 <= int(k) <= MAX_DEGREE:
        raise ValueError(f"{name} must be in [0, {MAX_DEGREE}] (the supported Hermite degree), got {k}")
    return int(k)


def hermite_values(z: Float[Array, "*batch"], max_degree: int) -> Float[Array, "*batch K"]:
    """All normalised Hermite values ``h_0(z), ..., h_K(z)`` by the three-term recurrence.

    Args:
      z: points, any shape.
      max_degree: ``K``, the highest degree returned (``0 <= K <= MAX_DEGREE``).

    Returns:
      Array of shape ``z.shape + (K + 1,)`` whose last axis indexes the degree.
    """
    K = _check_degree("max_degree", max_degree)
    z = jnp.asarray(z)
    if not jnp.issubdtype(z.dtype, jnp.floating):
        z = z.astype(jnp.float32)
    values = [jnp.ones_like(z)]
    if K >= 1:
        values.append(z)
    for k in range(1, K):
        values.append((z * values[k] - math.sqrt(k) * values[k - 1]) / math.sqrt(k + 1))
    return jnp.stack(values, axis=-1)


def hermite_derivatives(z: Float[Array, "*batch"], max_degree: int) -> Float[Array, "*batch K"]:
    """Derivatives ``h_0'(z), ..., h_K'(z)`` from the identity ``h_k' = sqrt(k) h_{k-1}``.

    Returns:
      Array of shape ``z.shape + (K + 1,)``; entry ``k`` is ``h_k'(z)`` (zero for ``k = 0``).
    """
    K = _check_degree("max_degree", max_degree)
    z = jnp.asarray(z)
    if K == 0:
        return jnp.zeros(z.shape + (1,), dtype=jnp.result_type(z, jnp.float32))
    lower = hermite_values(z, K - 1)
    scale = jnp.sqrt(jnp.arange(1, K + 1, dtype=lower.dtype))
    return jnp.concatenate([jnp.zeros_like(lower[..., :1]), lower * scale], axis=-1)


def multi_index_hermite(
    z: Float[Array, "*batch r"], alphas: Int[Array, "T r"] | Sequence[Sequence[int]]
) -> Float[Array, "*batch T"]:
    """Products ``h_alpha(z) = prod_i h_{alpha_i}(z_i)`` for a list of multi-indices.

    Args:
      z: points in ``R^r`` (last axis ``r``).
      alphas: ``T`` multi-indices of length ``r`` with entries in ``[0, MAX_DEGREE]`` (static, e.g. a tuple of
        tuples, so that the gather pattern is known at trace time).

    Returns:
      Array of shape ``z.shape[:-1] + (T,)``.
    """
    alphas_np = np.asarray(alphas, dtype=np.int32)
    if alphas_np.ndim != 2 or alphas_np.shape[1] != z.shape[-1]:
        raise ValueError(
            f"alphas must have shape (T, r) with r = z.shape[-1] = {z.shape[-1]}, got {alphas_np.shape}"
        )
    if alphas_np.size and (alphas_np.min() < 0 or alphas_np.max() > MAX_DEGREE):
        raise ValueError(f"alphas entries must be in [0, {MAX_DEGREE}], got range "
                         f"[{alphas_np.min()}, {alphas_np.max()}]")
    K = int(alphas_np.max()) if alphas_np.size else 0
    table = hermite_values(z, K)  # (*batch, r, K + 1)
    r = alphas_np.shape[1]
    # gather h_{alpha_{t,i}}(z_i) -> (*batch, T, r), then multiply over i
    picked = table[..., np.arange(r)[None, :], alphas_np]
    return jnp.prod(picked, axis=-1)


@functools.lru_cache(maxsize=64)
def gauss_hermite_rule(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``order``-point Gauss-Hermite rule for ``N(0, 1)``.

    ``sum_i w_i F(z_i) = E[F(z)]`` exactly for polynomials ``F`` of degree ``<= 2 order - 1``.
    Built from ``numpy.polynomial.hermite_e.hermegauss`` (weight ``exp(-z^2 / 2)``), rescaled to a probability.

    Returns:
      ``(nodes, weights)``, float64 numpy arrays of length ``order``.
    """
    if not 1 <= order <= 100:
        raise ValueError(f"order must be in [1, 100], got {order}")
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    return nodes, weights / math.sqrt(2.0 * math.pi)


def gaussian_grid(r: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product Gauss-Hermite grid for ``N(0, I_r)``: ``order**r`` nodes of shape ``(order**r, r)``.

    Exact for polynomials whose degree in each coordinate is ``<= 2 order - 1``.  Intended for small ``r``
    (the grid size grows like ``order**r``; ``r <= 4`` with ``order <= 20`` stays below 160,000 nodes).
    """
    if not 1 <= r <= 6:
        raise ValueError(f"r must be in [1, 6] for a tensor Gauss-Hermite grid, got {r}")
    if order ** r > 2_000_000:
        raise ValueError(f"order**r = {order ** r} nodes is too many; lower order (got {order}) or r (got {r})")
    nodes_1d, weights_1d = gauss_hermite_rule(order)
    mesh = np.meshgrid(*([nodes_1d] * r), indexing="ij")
    nodes = np.stack([m.reshape(-1) for m in mesh], axis=-1)
    wmesh = np.meshgrid(*([weights_1d] * r), indexing="ij")
    weights = np.prod(np.stack([w.reshape(-1) for w in wmesh], axis=-1), axis=-1)
    return nodes, weights


def gaussian_expectation(
    fn: Callable[[Float[Array, "N r"]], Float[Array, "N ..."]], r: int, order: int
) -> Float[Array, "..."]:
    """``E_{z ~ N(0, I_r)}[fn(z)]`` by a tensor Gauss-Hermite grid (exact for polynomials of low enough degree).

    Args:
      fn: batched function mapping nodes of shape ``(N, r)`` to values of shape ``(N, ...)``.
      r: dimension of ``z``.
      order: points per coordinate; exact when ``fn`` has degree ``<= 2 order - 1`` in each coordinate.

    Returns:
      The expectation, of shape ``fn(z).shape[1:]``, in the dtype ``fn`` returns.
    """
    nodes, weights = gaussian_grid(r, order)
    values = fn(jnp.asarray(nodes, dtype=jnp.float32))
    w = jnp.asarray(weights, dtype=values.dtype)
    return jnp.tensordot(w, values, axes=(0, 0))


def gaussian_expectation_numpy(
    fn: Callable[[np.ndarray], np.ndarray], r: int, order: int
) -> np.ndarray:
    """Same as :func:`gaussian_expectation` in float64 numpy (for exact references in tests and moments)."""
    nodes, weights = gaussian_grid(r, order)
    return np.tensordot(weights, np.asarray(fn(nodes), dtype=np.float64), axes=(0, 0))


def hermite_values_numpy(z: np.ndarray, max_degree: int) -> np.ndarray:
    """Float64 numpy version of :func:`hermite_values` (same recurrence), for host-side exact computations."""
    K = _check_degree("max_degree", max_degree)
    z = np.asarray(z, dtype=np.float64)
    values = [np.ones_like(z)]
    if K >= 1:
        values.append(z)
    for k in range(1, K):
        values.append((z * values[k] - math.sqrt(k) * values[k - 1]) / math.sqrt(k + 1))
    return np.stack(values, axis=-1)


__all__ = [
    "MAX_DEGREE",
    "hermite_values",
    "hermite_derivatives",
    "multi_index_hermite",
    "gauss_hermite_rule",
    "gaussian_grid",
    "gaussian_expectation",
    "gaussian_expectation_numpy",
    "hermite_values_numpy",
]

