"""Nystrom kernel ridge by preconditioned conjugate gradients (falkon): ``O(n M)`` per iteration, no ``2 n M^2`` Gram.

:mod:`reprjax.solvers.nystrom` solves the Nystrom problem (same notation, same per-sample convention)

    (H + s K) alpha = b,      H = K_nM^T W K_nM,   b = K_nM^T W y,   K = K_MM + eps I,   s = n_eff lam,

directly: it accumulates ``H`` (``2 n M^2`` float64 FLOPs) once and factorises per strength.  Falkon (Rudi,
Carratino & Rosasco 2017; Meanti et al. 2020) never forms ``H``: conjugate gradients only need ``H v``, two passes
over the kernel blocks (``4 n M`` FLOPs), and the preconditioner makes the iteration count small.  With the centres
a uniform subset of ``M_eff`` of the ``n_eff`` samples, ``H ~ (n_eff / M_eff) K^2``; with ``K = L L^T`` (Cholesky)
and ``c T + s I = R R^T`` (``T = L^T L``, ``c = n_eff / M_eff``) the change of variables ``alpha = L^{-T} R^{-T}
beta`` turns the system into

    R^{-1} (L^{-1} H L^{-T} + s I) R^{-T} beta = R^{-1} L^{-1} b,

whose operator is ``~ I`` where the centres represent the samples.  CG runs on ``beta``.

Choices (measured in docs/kernels_at_scale.md, "Falkon"):

* **Precision**: kernel blocks in ``kernel_dtype`` (float32), every reduction and the CG recurrences in float64 (the
  coefficients grow large at the near-ridgeless strengths validation prefers and their cancellations need it);
  ``K``, ``T`` and ``R`` are float64.
* **Strength path with warm starts**: strengths are solved one at a time from the largest down, each CG started
  from the previous strength's coefficients (the solutions move little between neighbouring strengths of a
  geometric grid); one Cholesky of ``c T + s I`` (``M^3 / 3``) per strength.  ``strategy="joint"`` instead solves
  every strength as a column of one CG: one pass over the kernel blocks per update serves them all (passes: the
  largest iteration count instead of the sum), at ``L`` factors ``R`` in memory.
* **Stopping rule**: CG stops when the residual of the preconditioned system falls to ``tol`` times its right-hand
  side, ``|r_k| <= tol |R^{-1} L^{-1} b|`` (the right-hand side, not the first residual, so that a warm start that
  is already close stops early), or after ``max_iter`` iterations; :class:`FalkonPath` records both per strength.
* **Kernel cache**: the kernel blocks are evaluated once and kept in ``kernel_dtype`` when ``n * M`` entries fit
  in ``cache_gib``; otherwise every iteration evaluates them again.  On CPU the ReLU NTK (polynomial arc-cosine)
  costs about what a cached pass does per entry, so without the cache an iteration costs about twice as much.

Memory: the cache (``n M`` entries of ``kernel_dtype``, when used), four ``M x M`` float64 matrices (``K``, ``L``,
``T``, ``R``; ``3 + L`` of them with ``strategy="joint"``) and one ``block x M`` kernel block in float64; never
``n x n``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float, Int

from reprjax import _validate
from reprjax.maths import lapack as _lapack
from reprjax.solvers import nystrom, ridge

#: Default stopping tolerance (relative residual of the preconditioned system); docs/kernels_at_scale.md, "Falkon".
TOL = 1e-6
#: Default iteration cap per strength.
MAX_ITER = 200
#: How the strengths share CG (:func:`falkon_ridge_path`): one at a time with warm starts, or all at once.
STRATEGIES = ("path", "joint")
#: Default bound on the kernel cache (GiB); beyond it kernel blocks are recomputed every iteration.
CACHE_GIB = 4.0


@struct.dataclass
class FalkonPath:
    """Falkon solutions for a grid of strengths, with the solver's record.

    Attributes:
      path: the :class:`reprjax.solvers.nystrom.NystromPath` (predict with :func:`reprjax.solvers.nystrom.predict`).
      iterations: ``(L,)`` CG iterations each strength took.
      residual: ``(L,)`` final relative residual ``|r| / |rhs|`` of the preconditioned system.
      cached: whether the kernel blocks were cached (static).
    """

    path: nystrom.NystromPath
    iterations: Int[Array, " L"]
    residual: Float[Array, " L"]
    cached: bool = struct.field(pytree_node=False, default=False)


def cache_fits(n: int, centres: int, cache_gib: float, kernel_dtype: str = "float32") -> bool:
    """Whether ``n x centres`` kernel entries of ``kernel_dtype`` fit in ``cache_gib`` GiB."""
    itemsize = 8 if kernel_dtype == "float64" else 4
    return n * centres * itemsize <= cache_gib * 2**30


def _gram_apply(kernel_fn, x, w, y, centres, block, kernel_dtype, cache):
    """``v -> (K_nM^T W K_nM v, K_nM^T W y)`` in float64, over blocks (each block's kernel evaluated once per call,
    or read from the cache)."""
    xb, wb = nystrom._blocks(x, block), nystrom._blocks(w, block)  # padding rows get weight 0
    yb = nystrom._blocks(y.astype(jnp.float64), block)
    kdt = jnp.float64 if kernel_dtype == "float64" else jnp.float32

    def kblock(xc):
        return kernel_fn(xc.astype(kdt), centres.astype(kdt)).astype(kdt)

    source = jax.lax.map(kblock, xb) if cache else xb

    def apply(v: Float[Array, "M k"]) -> tuple[Float[Array, "M k"], Float[Array, " M"]]:
        def step(acc, batch):
            kb = (batch[0] if cache else kblock(batch[0])).astype(jnp.float64)
            both = kb.T @ (jnp.concatenate([kb @ v, batch[2][:, None]], axis=1) * batch[1][:, None])
            return acc + both, None

        out, _ = jax.lax.scan(step, jnp.zeros((v.shape[0], v.shape[1] + 1), jnp.float64), (source, wb, yb))
        return out[:, :-1], out[:, -1]

    return apply


def _add_diagonal(a: Float[Array, "M M"], value) -> Float[Array, "M M"]:
    """``a + value I`` without materialising ``I`` (an ``M x M`` float64 identity is 0.75 GiB at M = 9690)."""
    i = jnp.arange(a.shape[0])
    return a.at[i, i].add(value)


def _cg(op_rhs, beta0, tol, max_iter):
    """Conjugate gradients on SPD operators, one per column of ``beta0`` ``(M, k)``, from ``beta0``; a column stops at
    ``|r| <= tol |rhs|`` or after ``max_iter`` updates (and is then left unchanged while the others continue).

    ``op_rhs(v)`` returns the operators applied to the columns of ``v`` and the right-hand sides, from the same
    kernel blocks: it is called exactly once per loop pass, the first pass forming the initial residual, so that the
    right-hand sides and every product come from one compiled program (float32 kernel blocks evaluated by two
    different programs can differ by ~1e-3 relative at XLA's lowest optimisation, enough to move near-ridgeless
    solutions).  Returns ``beta``, the number of CG updates of each column and its final relative residual.
    """
    def running(its, rr, norm):
        return (its < max_iter) & (jnp.sqrt(rr) > tol * norm)

    def cond(state):
        k, _, _, _, rr, norm, its = state
        return (k == 0) | jnp.any(running(its, rr, norm))

    def body(state):
        k, beta, r, p, rr, norm, its = state
        first = k == 0
        q, rhs = op_rhs(jnp.where(first, beta, p))
        active = ~first & running(its, rr, norm)
        pq = jnp.sum(p * q, axis=0)
        step = jnp.where(active & (pq != 0), rr / jnp.where(pq == 0, 1.0, pq), 0.0)
        beta = beta + step * p
        r = jnp.where(first, rhs - q, r - step * q)
        rr_new = jnp.sum(r * r, axis=0)
        p = jnp.where(first, r, jnp.where(active, r + (rr_new / jnp.where(rr == 0, 1.0, rr)) * p, p))
        norm = jnp.where(first, jnp.linalg.norm(rhs, axis=0), norm)
        return k + 1, beta, r, p, rr_new, norm, its + active.astype(jnp.int32)

    zero, cols = jnp.zeros_like(beta0), jnp.zeros((beta0.shape[1],), beta0.dtype)
    init = (jnp.asarray(0, jnp.int32), beta0, zero, zero, cols, cols, jnp.zeros((beta0.shape[1],), jnp.int32))
    _, beta, _, _, rr, norm, its = jax.lax.while_loop(cond, body, init)
    return beta, its, jnp.sqrt(rr) / jnp.maximum(norm, jnp.finfo(beta0.dtype).tiny)


def falkon_ridge_path(
    kernel_fn: nystrom.KernelFn,
    x: Float[Array, "n d"],
    y: Float[Array, " n"],
    lambdas: tuple[float, ...],
    centres: int,
    sample_weight: Float[Array, " n"] | None = None,
    block: int = 2048,
    kernel_dtype: str = "float32",
    tol: float = TOL,
    max_iter: int = MAX_ITER,
    cache_gib: float = CACHE_GIB,
    warm_start: bool = True,
    jitter: float = 1e-6,
    strategy: str = "path",
) -> FalkonPath:
    """Nystrom kernel ridge by preconditioned CG for a grid of relative strengths (the module's docstring).

    Solves the same system as :func:`reprjax.solvers.nystrom.nystrom_ridge_path` (same centres, same strengths
    relative to the mean diagonal, same jitter) to the relative residual ``tol``.

    Args:
      kernel_fn: ``(x1, x2) -> (n1, n2)`` kernel, evaluated on blocks only.
      x: ``(n, d)`` inputs; y: ``(n,)`` targets.
      lambdas: relative ridge strengths, each ``> 0``.
      centres: ``M``, in ``[1, n]``; the first ``M`` active samples.
      sample_weight: optional 0/1 mask (a prefix of active rows).
      block: samples per kernel block.
      kernel_dtype: ``float32`` (default) or ``float64``.
      tol: stopping tolerance, in ``(0, 1]``.
      max_iter: iteration cap per strength, ``>= 1``.
      cache_gib: keep the kernel blocks in memory when they fit in this many GiB (0: never).
      warm_start: start each strength's CG from the previous (larger) strength's solution; else from zero.
      jitter: ``eps`` of ``K_MM + eps I`` relative to its mean diagonal, as in :func:`nystrom.solve_path`.
      strategy: ``path`` (default): one strength at a time, largest first, warm-started (memory: one preconditioner
        factor); ``joint``: every strength at once as columns of one CG, so that one pass over the kernel blocks
        serves them all (iterations: the largest over strengths instead of their sum; memory: ``L`` factors of
        ``M x M`` float64, and ``warm_start`` does not apply).

    Returns:
      :class:`FalkonPath` (float64 coefficients, iterations and final residual per strength).
    """
    if x.ndim != 2 or y.shape != x.shape[:1]:
        raise ValueError(f"x must be (n, d) and y (n,), got {x.shape} and {y.shape}")
    n = x.shape[0]
    nystrom.check_centres(centres, n)
    _validate.check_int("block", block, low=1)
    _validate.check_choice("kernel_dtype", kernel_dtype, nystrom.KERNEL_DTYPES)
    _validate.check_number("tol", tol, low=0.0, high=1.0, low_open=True)
    _validate.check_int("max_iter", max_iter, low=1)
    _validate.check_number("cache_gib", cache_gib, low=0.0)
    _validate.check_choice("strategy", strategy, STRATEGIES)
    ridge.check_lambdas(lambdas)
    if min(lambdas) <= 0:
        raise ValueError(f"lambdas must all be > 0 for falkon (CG needs a positive definite system), got {lambdas}")
    _validate.check_finite_array("x", x)
    _validate.check_finite_array("y", y)
    cache = cache_fits(n, centres, cache_gib, kernel_dtype)
    block = min(block, n)
    order = sorted(range(len(lambdas)), key=lambda i: -lambdas[i])  # largest strength first
    with jax.enable_x64(True):
        c, cw = nystrom.select_centres(x, centres, sample_weight)
        cw = cw.astype(jnp.float64)

        def masked_kernel(x1, x2):
            return kernel_fn(x1, x2) * cw.astype(x1.dtype)[None, :]

        w = jnp.ones((n,), jnp.float64) if sample_weight is None else sample_weight.astype(jnp.float64)
        apply_h = _gram_apply(masked_kernel, x, w, y, c, block, kernel_dtype, cache)
        kmm = nystrom._kernel_block(kernel_fn, c, c, kernel_dtype) * cw[:, None] * cw[None, :]
        kmm = 0.5 * (kmm + kmm.T)
        m = kmm.shape[0]
        eps = jitter * jnp.maximum(jnp.mean(jnp.diag(kmm)), jnp.finfo(jnp.float64).tiny)
        low = _lapack.cholesky(_add_diagonal(kmm, eps))
        low = jax.lax.cond(jnp.all(jnp.isfinite(low)), lambda: low,
                           lambda: _lapack.cholesky(_add_diagonal(kmm, 1e3 * eps)))
        n_eff = jnp.sum(w)
        scale = n_eff / jnp.maximum(jnp.sum(cw), 1.0)
        t = scale * (low.T @ low)
        t = 0.5 * (t + t.T)
        floor = 1e-13 * jnp.trace(t) / m  # keeps R's Cholesky defined at the smallest shifts (preconditioner only)
        diag = nystrom.predict_diag(kernel_fn, x, block, kernel_dtype)
        lam = jnp.asarray(lambdas, jnp.float64) * (jnp.sum(w * diag) / n_eff)
        shifts = n_eff * lam[jnp.asarray(order)]

        def factor(shift):
            return _lapack.cholesky(_add_diagonal(t, shift + floor))

        # per column j: R_j^{-T} (column), R_j^{-1} (column); rs is (k, M, M), columns of v are the k strengths
        def r_t_solve(rs, v):
            return jax.vmap(lambda r, col: _lapack.solve_lower(r, col, transpose=True), (0, 1), 1)(rs, v)

        def r_solve(rs, v):  # v: (M, k, 2), both columns of strength j solved with R_j in one call
            return jax.vmap(_lapack.solve_lower, (0, 1), 1)(rs, v)

        def operator(rs, shift):
            def op_rhs(beta):
                u = r_t_solve(rs, beta)
                hv, b = apply_h(_lapack.solve_lower(low, u, transpose=True))
                both = _lapack.solve_lower(low, jnp.concatenate([hv, b[:, None]], axis=1))
                # one read of each R (M x M float64) per pass for the product and the right-hand side together
                out = r_solve(rs, jnp.stack([both[:, :-1] + shift[None, :] * u,
                                             jnp.broadcast_to(both[:, -1:], u.shape)], axis=-1))
                return out[..., 0], out[..., 1]
            return op_rhs

        def to_alpha(rs, beta):
            return _lapack.solve_lower(low, r_t_solve(rs, beta), transpose=True)

        if strategy == "joint":
            rs = jax.lax.map(factor, shifts)
            beta, iters, res = _cg(operator(rs, shifts), jnp.zeros((m, shifts.shape[0]), jnp.float64), tol, max_iter)
            coef = to_alpha(rs, beta).T
        else:
            def solve_one(alpha_prev, shift):
                rs = factor(shift)[None]
                beta0 = (rs[0].T @ (low.T @ alpha_prev))[:, None] if warm_start else jnp.zeros((m, 1), jnp.float64)
                beta, k, res = _cg(operator(rs, shift[None]), beta0, tol, max_iter)
                alpha = to_alpha(rs, beta)[:, 0]
                return alpha, (alpha, k[0], res[0])

            _, (coef, iters, res) = jax.lax.scan(solve_one, jnp.zeros((m,), jnp.float64), shifts)
        inverse = jnp.argsort(jnp.asarray(order))
        path = nystrom.NystromPath(coef=coef[inverse] * cw[None, :], lambdas=lam, centres=c, active=jnp.sum(cw))
        return FalkonPath(path=path, iterations=iters[inverse], residual=res[inverse], cached=cache)


__all__ = ["CACHE_GIB", "FalkonPath", "MAX_ITER", "STRATEGIES", "TOL", "cache_fits", "falkon_ridge_path"]
