"""Dense factorisations that never reach LAPACK with a batch dimension on CPU.

jaxlib 0.10.2 hands the matrices of a batched CPU LAPACK call (``potrf``, ``syevd``, ``gesdd``, ``geqrf``) to
XLA's intra-op thread pool and blocks its own pool thread until they are done (``ParallelBatchMap``).  When the
thunk executor runs as many batched calls at once as the pool has threads (two on a 2-core machine: under ``vmap``
a ``lax.cond`` becomes a select, so a Cholesky and its eigendecomposition fallback run side by side), every pool
thread waits for work that no thread is left to run: the program deadlocks at 0% CPU.  Measured here: a
``vmap`` over two seeds of Nystrom kernel ridge (d = 6, n = 1100, 200 centres) hung in 3 of 4 runs, with both pool
threads in ``BlockingCounter::Wait`` under ``lapack_dpotrf_ffi``; jax 0.11.2 compiles that parallel path out.

The functions below are the ``jnp`` / ``jax.scipy`` ones, except that on CPU a ``vmap`` over them becomes a loop
of unbatched calls (:func:`jax.custom_batching.sequential_vmap`), and a leading batch dimension is looped the same
way.  An unbatched call runs on its own thread and never waits on the pool.  The loop costs nothing measurable at
the sizes where these calls matter (one factorisation is ``O(k^3)``); accelerators keep their batched kernels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def _on_cpu() -> bool:
    return jax.default_backend() == "cpu"


def _unbatched(fn: Callable, core_ndim: int) -> Callable:
    """``fn`` on CPU with every batch dimension (leading axes beyond ``core_ndim`` and ``vmap`` axes) looped."""
    sequential = jax.custom_batching.sequential_vmap(fn)

    @functools.wraps(fn)
    def wrapped(a, *args):
        if not _on_cpu():
            return fn(a, *args)
        if a.ndim > core_ndim:
            return jax.lax.map(lambda item: wrapped(item[0], *item[1:]), (a,) + args)
        return sequential(a, *args)

    return wrapped


def _cholesky(a: Array) -> Array:
    return jnp.linalg.cholesky(a)


def _eigh(a: Array) -> tuple[Array, Array]:
    return jnp.linalg.eigh(a)


def _svd_vals(a: Array) -> Array:
    return jnp.linalg.svd(a, compute_uv=False)


def _svd(a: Array) -> tuple[Array, Array, Array]:
    return jnp.linalg.svd(a, full_matrices=False)


def _qr(a: Array) -> tuple[Array, Array]:
    return jnp.linalg.qr(a, mode="reduced")


_cholesky_cpu = _unbatched(_cholesky, 2)
_eigh_cpu = _unbatched(_eigh, 2)
_svd_vals_cpu = _unbatched(_svd_vals, 2)
_svd_cpu = _unbatched(_svd, 2)
_qr_cpu = _unbatched(_qr, 2)


def cholesky(a: Float[Array, "k k"]) -> Float[Array, "k k"]:
    """Lower Cholesky factor (``jnp.linalg.cholesky``; NaN where ``a`` is not positive definite)."""
    return _cholesky_cpu(a)


def eigh(a: Float[Array, "k k"]) -> tuple[Float[Array, " k"], Float[Array, "k k"]]:
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix (``jnp.linalg.eigh``)."""
    return _eigh_cpu(a)


def singular_values(a: Float[Array, "m k"]) -> Float[Array, " r"]:
    """Singular values, descending (``jnp.linalg.svd(a, compute_uv=False)``)."""
    return _svd_vals_cpu(a)


def svd(a: Float[Array, "m k"]) -> tuple[Array, Array, Array]:
    """Thin SVD ``u, s, vt`` (``jnp.linalg.svd(a, full_matrices=False)``)."""
    return _svd_cpu(a)


def qr(a: Float[Array, "m k"]) -> tuple[Array, Array]:
    """Reduced QR ``q, r`` (``jnp.linalg.qr(a, mode="reduced")``)."""
    return _qr_cpu(a)


def _tri(low: Array, rhs: Array) -> Array:
    return jax.scipy.linalg.solve_triangular(low, rhs, lower=True)


def _tri_t(low: Array, rhs: Array) -> Array:
    return jax.scipy.linalg.solve_triangular(low, rhs, lower=True, trans=1)


_tri_cpu = _unbatched(_tri, 2)
_tri_t_cpu = _unbatched(_tri_t, 2)


def solve_lower(low: Float[Array, "k k"], rhs: Array, transpose: bool = False) -> Array:
    """``L^{-1} rhs`` (or ``L^{-T} rhs``) for a lower-triangular ``L`` (``jax.scipy.linalg.solve_triangular``)."""
    return (_tri_t_cpu if transpose else _tri_cpu)(low, rhs)


def cho_solve(low: Float[Array, "k k"], rhs: Array) -> Array:
    """``(L L^T)^{-1} rhs`` from a lower Cholesky factor, by two triangular solves."""
    return solve_lower(low, solve_lower(low, rhs), transpose=True)


__all__ = ["cho_solve", "cholesky", "eigh", "qr", "singular_values", "solve_lower", "svd"]
