"""Kernel ridge at large ``n`` by the Nystrom method: memory ``O(block * M + M^2)``, never ``n x n``.

Kernel ridge with ``n`` samples factorises an ``n x n`` matrix, which caps it near ``n ~ 10^4``; the kernel lower
bound of Damian, Lee & Soltanolkotabi (2022, Section 3 and Appendix E: rotation-invariant kernels need ``n ~ d^p``)
is only visible far past that.  Restricting the coefficients to ``M`` centres ``c_1..c_M`` (Williams & Seeger
2001; Rudi, Camoriano & Rosasco 2015) gives, with the per-sample convention of :mod:`reprjax.solvers.ridge`,

    alpha(lam) = argmin (1/n) sum_i w_i (K_nM alpha - y)_i^2 + lam alpha^T K_MM alpha
               = (H + n lam K_MM)^{-1} b,      H = K_nM^T W K_nM,   b = K_nM^T W y,

which equals exact kernel ridge when the centres are all the samples.  ``H`` and ``b`` are accumulated over blocks
of ``block`` samples (kernel blocks computed on the fly), so the working set is one ``block x M`` kernel block plus
the ``M x M`` matrices.  Every strength of a grid is then solved from one accumulation: a Cholesky factor ``L`` of
``K_MM`` (plus a small jitter) turns the system into ``L (A + n lam I) L^T alpha = b`` with ``A = L^{-1} H L^{-T}``,
one ``M x M`` Cholesky per strength (:func:`solve_path`).

Precision (docs/kernels_at_scale.md, "Nystrom precision"): ``H`` squares the condition number of ``K_nM``.  The
degree-``k`` eigenvalues of a rotation-invariant kernel fall like ``d^-k``, so at ``d = 16`` the degree-4 part of
``H`` sits ~1e-10 below its top, under float32 resolution: normal equations in float32 lose exactly the part of the
target the kernel study is about.  Here the kernel blocks are evaluated in ``kernel_dtype`` (float32 by default: the
kernel values carry ~1e-7 relative error, well above what the degree-4 directions need only after squaring), and
``H``, ``b`` and the solve are float64, inside a scoped ``jax.enable_x64`` (predictions are float32,
:func:`predict`).  The centres are the first ``M`` fitting samples, a uniform random subset (the samples are i.i.d.),
which also keeps the sample-mask prefix property: a masked run with ``n_active >= M`` uses the same centres.

:mod:`reprjax.solvers.falkon` solves the same system by preconditioned conjugate gradients (Rudi, Carratino &
Rosasco 2017): ``O(n M)`` per iteration instead of the ``2 n M^2`` accumulation of ``H``, at one iterative solve per
strength; this direct form serves a whole grid of strengths from one pass over the data and has an exact cost.
Which is faster where: docs/kernels_at_scale.md, "Falkon".
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float

from reprjax import _validate
from reprjax.maths import lapack as _lapack
from reprjax.solvers import ridge

KernelFn = Callable[[Array, Array], Array]

#: Dtypes the kernel blocks may be evaluated in.
KERNEL_DTYPES = ("float32", "float64")


@struct.dataclass
class NystromPath:
    """Nystrom kernel ridge solutions for a grid of strengths.

    Attributes:
      coef: ``(L, M)`` float64 coefficients on the centres; predictions ``K(x, centres) @ coef.T``.
      lambdas: ``(L,)`` absolute ridge strengths (relative grid times the mean diagonal ``tr(K_nn) / n``).
      centres: ``(M, d)`` the centres.
      active: number of centres in use (all of them unless a mask leaves fewer active samples).
    """

    coef: Float[Array, "L M"]
    lambdas: Float[Array, " L"]
    centres: Float[Array, "M d"]
    active: Array


def check_centres(centres: int, n_fit: int) -> int:
    """``M`` must be an integer in ``[1, n_fit]`` (there are only ``n_fit`` samples to place centres on)."""
    _validate.check_int("centres", centres, low=1)
    if centres > n_fit:
        raise ValueError(f"centres must be in [1, n_fit = {n_fit}] (the number of fitting samples), got {centres}")
    return int(centres)


def _blocks(array: Array, block: int) -> Array:
    """Rows of ``array`` padded with zeros to a multiple of ``block`` and reshaped to ``(n_blocks, block, ...)``."""
    n = array.shape[0]
    pad = -n % block
    padded = jnp.concatenate([array, jnp.zeros((pad,) + array.shape[1:], array.dtype)]) if pad else array
    return padded.reshape((-1, block) + array.shape[1:])


def _kernel_block(kernel_fn: KernelFn, x: Array, centres: Array, kernel_dtype: str) -> Array:
    dt = jnp.float64 if kernel_dtype == "float64" else jnp.float32
    return kernel_fn(x.astype(dt), centres.astype(dt)).astype(jnp.float64)


def normal_equations(
    kernel_fn: KernelFn,
    x: Float[Array, "n d"],
    y: Float[Array, " n"],
    centres: Float[Array, "M d"],
    weight: Float[Array, " n"] | None = None,
    block: int = 4096,
    kernel_dtype: str = "float32",
) -> tuple[Float[Array, "M M"], Float[Array, " M"]]:
    """``H = K_nM^T W K_nM`` and ``b = K_nM^T W y`` in float64, accumulated over blocks of ``block`` samples.

    Call inside ``jax.enable_x64(True)``.  Memory: one ``(block, M)`` block and two ``M x M`` float64 matrices.
    Cost: ``2 n M^2`` float64 FLOPs for ``H`` plus ``n`` / ``block`` kernel evaluations of ``block x M``.
    """
    n = x.shape[0]
    w = jnp.ones((n,), jnp.float64) if weight is None else weight.astype(jnp.float64)
    block = min(block, n)
    xb, yb, wb = _blocks(x, block), _blocks(y.astype(jnp.float64), block), _blocks(w, block)  # padding: w = 0
    m = centres.shape[0]

    def step(carry, batch):
        h, b = carry
        xc, yc, wc = batch
        k = _kernel_block(kernel_fn, xc, centres, kernel_dtype)
        kw = k * wc[:, None]
        return (h + kw.T @ k, b + kw.T @ yc), None

    zeros = (jnp.zeros((m, m), jnp.float64), jnp.zeros((m,), jnp.float64))
    (h, b), _ = jax.lax.scan(step, zeros, (xb, yb, wb))
    return 0.5 * (h + h.T), b


def solve_path(
    kmm: Float[Array, "M M"],
    h: Float[Array, "M M"],
    b: Float[Array, " M"],
    shifts: Float[Array, " L"],
    jitter: float = 1e-6,
    minimum_norm: bool = False,
) -> Float[Array, "L M"]:
    """``(H + s_l (K_MM + eps I))^{-1} b`` for every shift ``s_l = n lam_l``, in float64.

    With ``K_MM + eps I = L L^T`` (Cholesky; ``eps = jitter * mean(diag K_MM)`` covers the float32 rounding of the
    kernel values, whose eigenvalue errors are ~1e-7 of the diagonal) and ``A = L^{-1} H L^{-T}``, the system is
    ``L (A + s I) L^T alpha = b``: one Cholesky of ``A + s I`` per shift (well conditioned for ``s > 0``, unlike
    ``H + s K_MM``), as in falkon (Rudi, Carratino & Rosasco 2017).  ``minimum_norm=True`` takes one
    eigendecomposition of ``A`` instead and the minimum-norm ``beta = L^T alpha``; the same path is the fallback
    when a shift is too small for the conditioning of ``A`` and a Cholesky fails (under ``vmap`` both paths run).  Cost
    ``M^3 / 3`` per shift plus ``2 M^3`` (eigh: ``9 M^3``, measured ~30x a matmul of the same size on 2 CPU cores).
    Call inside ``jax.enable_x64(True)``.
    """
    m = kmm.shape[0]
    kmm = 0.5 * (kmm + kmm.T)
    eps = jitter * jnp.maximum(jnp.mean(jnp.diag(kmm)), jnp.finfo(jnp.float64).tiny)
    eye = jnp.eye(m, dtype=kmm.dtype)

    def factor(scale):
        return _lapack.cholesky(kmm + scale * eps * eye)

    low = factor(1.0)
    low = jax.lax.cond(jnp.all(jnp.isfinite(low)), lambda: low, lambda: factor(1e3))  # rounding beat the jitter

    def tri(mat, rhs, trans=0):
        return _lapack.solve_lower(mat, rhs, transpose=bool(trans))

    a = tri(low, tri(low, h).T)  # L^{-1} H L^{-T} (H symmetric)
    a = 0.5 * (a + a.T)
    c = tri(low, b)
    def eigen_solve():
        dvals, v = _lapack.eigh(a)
        dvals = jnp.maximum(dvals, 0.0)
        denom = dvals[None, :] + shifts[:, None]
        keep = denom > m * jnp.finfo(jnp.float64).eps * jnp.max(dvals)
        inv = jnp.where(keep, 1.0 / jnp.where(keep, denom, 1.0), 0.0)
        return ((v.T @ c)[None, :] * inv) @ v.T

    if minimum_norm:
        beta = eigen_solve()
    else:
        def one(s):
            chol = _lapack.cholesky(a + s * eye)
            return tri(chol, tri(chol, c), trans=1)

        beta = jax.lax.map(one, shifts)
        # a shift too small for the conditioning of A fails the Cholesky (NaN): solve by the stable eigen path
        beta = jax.lax.cond(jnp.all(jnp.isfinite(beta)), lambda: beta, eigen_solve)
    return tri(low, beta.T, trans=1).T


def predict(
    kernel_fn: KernelFn,
    x: Float[Array, "n d"],
    path: NystromPath,
    block: int = 4096,
) -> Float[Array, "n L"]:
    """Predictions ``K(x, centres) @ coef.T`` of every strength in float32, one ``(block, M)`` block at a time.

    float32 suffices here (unlike for the normal equations): at d = 8, n = 8192, M = 2048 the test error of float32
    and float64 predictions agreed to 1e-7 (docs/kernels_at_scale.md, "Nystrom precision"); and float32 keeps the
    predictor safe inside loops that are batched outside a float64 scope (``vmap`` of ``fori_loop``).
    """
    n = x.shape[0]
    block = min(block, n)
    centres, coef = path.centres.astype(jnp.float32), path.coef.astype(jnp.float32)
    out = jax.lax.map(lambda xc: kernel_fn(xc.astype(jnp.float32), centres).astype(jnp.float32) @ coef.T,
                      _blocks(x, block))
    return out.reshape((-1, out.shape[-1]))[:n]


def select_centres(x: Float[Array, "n d"], centres: int,
                   weight: Float[Array, " n"] | None = None) -> tuple[Float[Array, "M d"], Float[Array, " M"]]:
    """The first ``centres`` active rows of ``x`` and their 0/1 weights (a mask keeps a prefix of the fit rows
    active, so a masked run and an unmasked run of the same active size get the same centres)."""
    if weight is None:
        return x[:centres], jnp.ones((centres,), x.dtype)
    # the first active row, as a count (jnp.argmax inside a scoped enable_x64 under lax.map fails to lower: its
    # cached @argmax returns i32 where the x64 trace declares i64)
    start = jnp.sum(jnp.cumsum(weight > 0, dtype=jnp.int32) == 0, dtype=jnp.int32)
    return (jax.lax.dynamic_slice_in_dim(x, start, centres),
            (jax.lax.dynamic_slice_in_dim(weight, start, centres) > 0).astype(x.dtype))


def nystrom_ridge_path(
    kernel_fn: KernelFn,
    x: Float[Array, "n d"],
    y: Float[Array, " n"],
    lambdas: tuple[float, ...],
    centres: int,
    sample_weight: Float[Array, " n"] | None = None,
    block: int = 4096,
    kernel_dtype: str = "float32",
) -> NystromPath:
    """Nystrom kernel ridge for a grid of relative strengths, centres the first ``centres`` active samples.

    Strengths are relative to the mean diagonal ``tr(K_nn) / n`` (weighted), as in
    :func:`reprjax.solvers.ridge.kernel_ridge_path`, so the two solvers agree when ``centres = n``.  With a 0/1
    ``sample_weight`` (masks keep a prefix active) centres beyond the active samples get weight 0: their kernel
    columns and rows of ``K_MM`` vanish, so their coefficients are 0 (the jitter keeps the factorisation defined).

    Args:
      kernel_fn: ``(x1, x2) -> (n1, n2)`` kernel, evaluated on blocks only.
      x: ``(n, d)`` inputs; y: ``(n,)`` targets.
      lambdas: relative ridge strengths, each ``>= 0``.
      centres: ``M``, in ``[1, n]``.
      sample_weight: optional 0/1 mask.
      block: samples per kernel block (memory ``block * M`` float64).
      kernel_dtype: ``float32`` (default) or ``float64``, the dtype the kernel blocks are evaluated in.

    Returns:
      :class:`NystromPath` (float64 coefficients).
    """
    if x.ndim != 2 or y.shape != x.shape[:1]:
        raise ValueError(f"x must be (n, d) and y (n,), got {x.shape} and {y.shape}")
    n = x.shape[0]
    check_centres(centres, n)
    _validate.check_int("block", block, low=1)
    _validate.check_choice("kernel_dtype", kernel_dtype, KERNEL_DTYPES)
    ridge.check_lambdas(lambdas, allow_zero=False)  # its normal equations are singular at strength 0
    _validate.check_finite_array("x", x)
    _validate.check_finite_array("y", y)
    with jax.enable_x64(True):
        c, cw = select_centres(x, centres, sample_weight)
        cw = cw.astype(jnp.float64)

        def masked_kernel(x1, x2):
            return kernel_fn(x1, x2) * cw.astype(x1.dtype)[None, :]

        h, b = normal_equations(masked_kernel, x, y, c, sample_weight, block, kernel_dtype)
        kmm = _kernel_block(kernel_fn, c, c, kernel_dtype) * cw[:, None] * cw[None, :]
        w = jnp.ones((n,), jnp.float64) if sample_weight is None else sample_weight.astype(jnp.float64)
        diag = predict_diag(kernel_fn, x, block, kernel_dtype)
        n_eff = jnp.sum(w)
        lam = jnp.asarray(lambdas, jnp.float64) * (jnp.sum(w * diag) / n_eff)
        coef = solve_path(kmm, h, b, n_eff * lam)
        return NystromPath(coef=coef * cw[None, :], lambdas=lam, centres=c, active=jnp.sum(cw))


def predict_diag(kernel_fn: KernelFn, x: Float[Array, "n d"], block: int = 4096,
                 kernel_dtype: str = "float32") -> Float[Array, " n"]:
    """``k(x_i, x_i)`` for every row, from ``kernel_fn`` on one row at a time (vmapped over a block)."""
    n = x.shape[0]
    block = min(block, n)

    def one(xi):
        return _kernel_block(kernel_fn, xi[None], xi[None], kernel_dtype)[0, 0]

    out = jax.lax.map(jax.vmap(one), _blocks(x, block))
    return out.reshape(-1)[:n]


__all__ = ["KERNEL_DTYPES", "NystromPath", "check_centres", "normal_equations", "nystrom_ridge_path", "predict",
           "predict_diag", "select_centres", "solve_path"]
