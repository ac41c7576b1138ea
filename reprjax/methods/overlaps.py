"""Order parameters of a first layer against the target's subspace: what a training trajectory records.

With ``M = W U^T`` (``m x r``, the per-direction overlaps) and ``Q = W W^T`` (``m x m``), the summaries are the
quantities the online-SGD literature tracks (Ben Arous, Gheissari & Jagannath 2021; Arnaboldi et al. 2023,
"From high-dimensional & mean-field dynamics to dimensionless ODEs"), summarised over neurons so that they stay
small whatever the width:

* ``alignment = ||M||_F^2 / ||W||_F^2``: the share of the layer's energy in ``span(U)`` (``r/d`` at random);
* ``overlap_sq[k] = mean_j M_jk^2`` and ``best_cosine[k] = max_j |M_jk| / ||w_j||`` per direction ``k``;
* ``mean_cosine = mean_j ||U w_j|| / ||w_j||``;
* ``q_diag = mean_j Q_jj`` (mean squared norm) and ``q_offdiag = sqrt(mean_{j != l} Q_jl^2)``.

Cost: ``O(m d r)`` for ``M`` and ``O(min(m, d)^2 max(m, d))`` for ``||Q||_F^2`` (from the smaller Gram matrix).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float

_TINY = 1e-30


@struct.dataclass
class Overlaps:
    """Order parameters of one first layer (leading axes: records of a trajectory, seeds, ...)."""

    alignment: Float[Array, "*t"]
    overlap_sq: Float[Array, "*t r"]
    best_cosine: Float[Array, "*t r"]
    mean_cosine: Float[Array, "*t"]
    q_diag: Float[Array, "*t"]
    q_offdiag: Float[Array, "*t"]


def overlaps(W: Float[Array, "m d"], U: Float[Array, "r d"]) -> Overlaps:
    """The order parameters of ``W`` against ``span(U)`` (module docstring).

    Args:
      W: first layer, rows ``w_j``.
      U: target directions, orthonormal rows.

    Returns:
      An :class:`Overlaps` of scalars and ``(r,)`` arrays.
    """
    if W.shape[-1] != U.shape[-1]:
        raise ValueError(f"W has dimension {W.shape[-1]} but U has d = {U.shape[-1]}")
    m, d = W.shape
    M = W @ U.T
    sq_norms = jnp.sum(W**2, axis=1)
    norms = jnp.sqrt(jnp.maximum(sq_norms, _TINY))
    gram = W.T @ W if d < m else W @ W.T
    q_fro2 = jnp.sum(gram**2)  # ||W W^T||_F^2 = ||W^T W||_F^2
    off = jnp.maximum(q_fro2 - jnp.sum(sq_norms**2), 0.0) / max(m * (m - 1), 1)
    return Overlaps(
        alignment=jnp.sum(M**2) / jnp.maximum(jnp.sum(sq_norms), _TINY),
        overlap_sq=jnp.mean(M**2, axis=0),
        best_cosine=jnp.max(jnp.abs(M) / norms[:, None], axis=0),
        mean_cosine=jnp.mean(jnp.linalg.norm(M, axis=1) / norms),
        q_diag=jnp.mean(sq_norms),
        q_offdiag=jnp.sqrt(off),
    )
