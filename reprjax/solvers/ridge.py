"""Ridge and kernel ridge regression for a whole grid of regularisation strengths at once.

Convention (per-sample mean loss, the paper's second stage, docs/setting.md "Algorithm 1", step 3):

    a(lam) = argmin_a (1/n) sum_i w_i (phi_i . a - y_i)^2 + lam ||a||^2  =  (Phi^T W Phi + n lam I)^{-1} Phi^T W y

with sample weights ``w_i`` (``1`` by default; ``0/1`` masks let several sample counts share one compiled program)
and ``n = sum_i w_i``.  Kernel ridge is the same problem in dual form: ``alpha(lam) = (K + n lam I)^{-1} y`` and
predictions ``K(x, X) alpha``.

Scale-free grids: ``lambdas`` are given relative to ``tr(K) / n`` (the mean squared feature norm, equal to
``tr(Phi^T W Phi) / n``), so one grid suits features of any scale; the absolute values used are returned.

Precision: the Gram matrix is formed in float32 (the heavy matmul).  Solving it needs more care: after the first
step the features live near a low-dimensional subspace and ``Phi^T Phi`` is numerically singular (condition
~1e16), so the small eigen-directions dominate the solution at small ``lam``.  Three precisions (measured at
``n = 8192``, ``m = 1024`` on such features, relative prediction error against an exact solve of the same system,
at ``lam_rel = 1e-6`` / ``1e-5``):

* ``float64``: factorise in float64 inside a scoped ``jax.enable_x64`` (the library never flips the global flag):
  8e-5 / 8e-6;
* ``float32``: factorise in float32 (eigenvalues floored at 0): 6e-3 / 8e-4 (eigh), 3e-4 / 3e-5 (Cholesky);
* ``refined`` (the default): factorise in float32, then :data:`REFINEMENT_STEPS` steps of iterative refinement
  with float64 residuals, each ``O(L k^2)``; a step is kept only where it lowers the residual.  8e-5 / 8e-6, the
  float64 answer, at the float32 factorisation's price (on 2 CPU cores a 256 x 256 float64 eigh takes about twice
  as long as the float32 one).  Below ``lam_rel ~ 1e-7`` no precision helps much: the float32 rounding of the Gram
  matrix itself (1e-3 there) dominates.

tests/test_ridge_baselines.py checks this ordering.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Float

from reprjax import _validate
from reprjax.maths import lapack as _lapack

#: Default grid of relative ridge strengths (multiples of tr(K)/n).
DEFAULT_LAMBDAS: tuple[float, ...] = tuple(float(v) for v in np.geomspace(1e-6, 1e1, 15))

SOLVERS = ("auto", "eigh", "cholesky")

#: ``solver="auto"`` factorises once per strength (Cholesky) for grids of at most this many strengths, else takes one
#: eigendecomposition; keyed by precision, then by the largest size ``k`` the limit applies to (None: any larger).
#: Measured on 2 CPU cores: in float64 an eigh costs as much as about 12 Choleskys at k = 256, 512 and 1024, 17 at
#: 2048 and 19 at 6554; in float32 (and ``refined``, whose refinement is batched over strengths for eigh but runs
#: per strength after each Cholesky) about 7-8 at k = 256 to 2048 and 18 at 6554.  The limits sit just below.
CHOLESKY_MAX_STRENGTHS = {"float64": {1024: 11, None: 16}, "float32": {2048: 6, None: 16},
                          "refined": {2048: 6, None: 16}}


PRECISIONS = ("refined", "float64", "float32")


def pick_solver(k: int, strengths: int, precision: str = "refined") -> str:
    """``cholesky`` or ``eigh`` for ``strengths`` systems of size ``k``, by the measured costs above."""
    _validate.check_choice("precision", precision, PRECISIONS)
    (size, small), (_, large) = CHOLESKY_MAX_STRENGTHS[precision].items()
    limit = small if k <= size else large
    return "cholesky" if strengths <= limit else "eigh"

#: Steps of iterative refinement for ``precision="refined"`` (measured in tests/test_ridge_baselines.py: the error
#: against the float64 factorisation falls by about 10x per step at the smallest default strength).
REFINEMENT_STEPS = 6


def check_lambdas(lambdas: tuple[float, ...] | Float[Array, " L"], name: str = "lambdas") -> None:
    """Each ridge strength must be finite and > 0.

    Strength 0 (the minimum-norm interpolant) is rejected: through the normal equations it is not computable to
    any useful accuracy here -- the Gram matrix squares the features' condition number, and after the first step
    (condition ~1e8) its small eigenvalues are float32 round-off, so the eigenvalue path gives a solution far
    from ``lstsq``'s (relative error 0.13 measured) and the Cholesky path NaN.  Use a small positive strength.
    """
    if _validate.is_concrete(lambdas) or isinstance(lambdas, (tuple, list)):
        try:
            arr = np.asarray(lambdas, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a sequence of numbers, got {lambdas!r}") from None
        if arr.size == 0:
            raise ValueError(f"{name} must hold at least one value")
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"{name} must be finite and > 0 (allowed range (0, inf); strength 0, the minimum-norm "
                             f"interpolant, is not supported: use e.g. 1e-8), got {arr.tolist()}")


def _precision_scope(precision: str):
    _validate.check_choice("precision", precision, PRECISIONS)
    return jax.enable_x64(True) if precision in ("float64", "refined") else contextlib.nullcontext()


def _solve_dtype(precision: str):
    return jnp.float64 if precision == "float64" else jnp.float32


def absolute_lambdas(
    lambdas: tuple[float, ...] | Float[Array, " L"], trace: Float[Array, ""], n_eff: Float[Array, ""]
) -> Float[Array, " L"]:
    """Relative strengths times ``tr(K) / n`` (``tr(K) = tr(Phi^T W Phi)``, the summed squared feature norms)."""
    check_lambdas(lambdas)
    return jnp.asarray(lambdas, jnp.float32) * (trace / n_eff)


@struct.dataclass
class RidgePath:
    """Solutions for a grid of ridge strengths.

    Attributes:
      coef: ``(L, k)`` coefficients (primal: ``k = m`` feature weights; dual: ``k = n`` sample weights).
      lambdas: ``(L,)`` absolute ridge strengths used (relative grid times ``tr(K)/n``).
    """

    coef: Float[Array, "L k"]
    lambdas: Float[Array, " L"]


def _inverse_eigh(g: Array, s: Array):
    """From one eigendecomposition of ``g``: ``r (L, k) -> (g + s_l I)^{-1} r_l`` for every shift ``s_l``."""
    evals, evecs = _lapack.eigh(g)
    evals = jnp.maximum(evals, 0.0)  # PSD by construction: clip round-off below zero
    denom = evals[None, :] + s[:, None]
    # a zero denominator (shift 0 on a null direction) gives the minimum-norm solution
    inv = jnp.where(denom > 0, 1.0 / jnp.where(denom > 0, denom, 1.0), 0.0)
    return lambda r: ((r @ evecs) * inv) @ evecs.T


def _refine(solve_f32: Callable[[Array], Array], g64: Array, b64: Array, s64: Array, a: Array, steps: int) -> Array:
    """Iterative refinement: residuals in float64, corrections from the float32 factorisation.

    A correction is kept only where it lowers the residual: when ``shift << eps_32 * ||g||`` the float32
    factorisation is too poor a preconditioner and plain refinement would diverge (seen with eigh at 1e-8).
    """
    def residual(a):
        return b64 - (a @ g64 + s64[:, None] * a)

    r = residual(a)
    norm = jnp.linalg.norm(r, axis=1)
    for _ in range(steps):
        candidate = a + solve_f32(r.astype(jnp.float32)).astype(jnp.float64)
        r_new = residual(candidate)
        norm_new = jnp.linalg.norm(r_new, axis=1)
        better = (norm_new < norm)[:, None]
        a, r, norm = jnp.where(better, candidate, a), jnp.where(better, r_new, r), jnp.minimum(norm, norm_new)
    return a


def solve_psd_path(
    gram: Float[Array, "k k"],
    rhs: Float[Array, " k"],
    shifts: Float[Array, " L"],
    solver: str = "auto",
    precision: str = "refined",
) -> Float[Array, "L k"]:
    """``(gram + shift_l I)^{-1} rhs`` for every shift, from one eigendecomposition or one Cholesky per shift.

    ``eigh`` costs about ``9 k^3`` FLOPs once, then ``O(k^2)`` per shift; ``cholesky`` costs ``k^3 / 3`` per shift;
    ``auto`` follows :func:`pick_solver`.  ``precision``: ``float64`` factorises in float64; ``float32`` in float32;
    ``refined`` factorises in float32 and runs :data:`REFINEMENT_STEPS` steps of iterative refinement with float64
    residuals (``O(L k^2)`` each), reaching the float64 answer at the float32 price (module docstring).  Returns
    float32.
    """
    _validate.check_choice("solver", solver, SOLVERS)
    if solver == "auto":
        solver = pick_solver(gram.shape[0], shifts.shape[0], precision)
    refine = precision == "refined"
    factor_precision = "float32" if refine else precision
    with _precision_scope(precision):
        dt = _solve_dtype(factor_precision)
        g = gram.astype(dt)
        g = 0.5 * (g + g.T)
        b = rhs.astype(dt)
        s = shifts.astype(dt)
        if refine:
            g64, b64, s64 = (v.astype(jnp.float64) for v in (g, b, s))
        if solver == "eigh":
            inverse = _inverse_eigh(g, s)
            coef = inverse(jnp.broadcast_to(b, (s.shape[0], b.shape[0])))
            if refine:
                coef = _refine(inverse, g64, b64, s64, coef.astype(jnp.float64), REFINEMENT_STEPS)
        else:
            eye = jnp.eye(g.shape[0], dtype=dt)

            def one(i):
                factor = _lapack.cholesky(g + s[i] * eye)
                a = _lapack.cho_solve(factor, b)
                if refine:
                    a = _refine(lambda r: _lapack.cho_solve(factor, r[0])[None], g64, b64, s64[i][None],
                                a.astype(jnp.float64)[None], REFINEMENT_STEPS)[0]
                return a

            coef = jax.lax.map(one, jnp.arange(s.shape[0]))
            coef = _retry_failed_factorisations(coef, g, b, s, g64 if refine else None, b64 if refine else None,
                                                s64 if refine else None)
        return coef.astype(jnp.float32)


def _retry_failed_factorisations(coef: Array, g: Array, b: Array, s: Array, g64: Array | None, b64: Array | None,
                                 s64: Array | None) -> Array:
    """Strengths whose Cholesky failed (a pivot <= 0 in float32 gives NaN) are solved again from one
    eigendecomposition (eigenvalues floored at 0: never NaN), refined like the rest where ``refined``.

    A ``lax.cond``: the eigendecomposition runs only when a factorisation failed (under ``vmap`` the cond becomes
    a select and it runs every time).
    """
    bad = ~jnp.all(jnp.isfinite(coef), axis=1)

    def retry(coef):
        inverse = _inverse_eigh(g, s)
        again = inverse(jnp.broadcast_to(b, (s.shape[0], b.shape[0])))
        if g64 is not None:
            again = _refine(inverse, g64, b64, s64, again.astype(jnp.float64), REFINEMENT_STEPS)
        return jnp.where(bad[:, None], again.astype(coef.dtype), coef)

    return jax.lax.cond(jnp.any(bad), retry, lambda c: c, coef)


def ridge_from_gram(
    gram: Float[Array, "m m"],
    moment: Float[Array, " m"],
    n_eff: Float[Array, ""],
    lambdas: tuple[float, ...] | Float[Array, " L"],
    solver: str = "auto",
    precision: str = "refined",
) -> RidgePath:
    """Primal ridge path from ``G = Phi^T W Phi``, ``c = Phi^T W y`` and ``n = sum w`` (e.g. accumulated in chunks)."""
    lam = absolute_lambdas(lambdas, jnp.trace(gram), n_eff)
    return RidgePath(coef=solve_psd_path(gram, moment, n_eff * lam, solver, precision), lambdas=lam)


def ridge_path(
    phi: Float[Array, "n m"],
    y: Float[Array, " n"],
    lambdas: tuple[float, ...] | Float[Array, " L"] = DEFAULT_LAMBDAS,
    sample_weight: Float[Array, " n"] | None = None,
    form: str = "auto",
    solver: str = "auto",
    precision: str = "refined",
) -> RidgePath:
    """Feature ridge for a grid of relative strengths; returns primal coefficients ``(L, m)`` in either form.

    Args:
      phi: design matrix (features).
      y: targets.
      lambdas: relative ridge strengths (multiples of ``tr(Phi^T W Phi)/n``), each >= 0.
      sample_weight: optional 0/1 mask of the samples to use.
      form: ``primal`` (``m x m`` system, for ``n > m``), ``dual`` (``n x n``), or ``auto`` (the smaller).
      solver: ``eigh`` (one eigendecomposition for the grid), ``cholesky`` (one factorisation per strength) or
        ``auto`` (Cholesky for short grids, see :func:`pick_solver`).
      precision: ``refined`` (float32 factorisation refined to the float64 answer, the default), ``float64`` or
        ``float32`` (module docstring).
    """
    _validate.check_choice("form", form, ("auto", "primal", "dual"))
    if phi.ndim != 2 or y.shape != phi.shape[:1]:
        raise ValueError(f"phi must be (n, m) and y (n,), got {phi.shape} and {y.shape}")
    if phi.shape[0] == 0 or phi.shape[1] == 0:
        raise ValueError(f"phi must be non-empty, got shape {phi.shape}")
    check_lambdas(lambdas)
    n, m = phi.shape
    w = jnp.ones((n,), phi.dtype) if sample_weight is None else sample_weight.astype(phi.dtype)
    n_eff = jnp.sum(w)
    if form == "primal" or (form == "auto" and n > m):
        phiw = phi * w[:, None]
        return ridge_from_gram(phiw.T @ phi, phiw.T @ y, n_eff, lambdas, solver, precision)
    path = kernel_ridge_path(phi @ phi.T, y, lambdas, sample_weight=sample_weight, solver=solver,
                             precision=precision)
    # push-through identity: a = Phi^T alpha, with alpha = 0 on masked samples
    return RidgePath(coef=path.coef @ phi, lambdas=path.lambdas)


def kernel_ridge_path(
    K: Float[Array, "n n"],
    y: Float[Array, " n"],
    lambdas: tuple[float, ...] | Float[Array, " L"] = DEFAULT_LAMBDAS,
    sample_weight: Float[Array, " n"] | None = None,
    solver: str = "auto",
    precision: str = "refined",
) -> RidgePath:
    """Kernel ridge ``alpha(lam) = (W K W + n lam I)^{-1} W y`` for a grid of relative strengths.

    ``sample_weight`` is a 0/1 mask (general weights are not supported in dual form).  With a mask the masked samples
    get ``alpha_i = 0`` and do not influence the others.  Predictions at new points are ``K(x, X) @ coef.T`` (shape
    ``(n_new, L)``).
    """
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be a square (n, n) matrix, got shape {K.shape}")
    if K.shape[0] == 0:
        raise ValueError("K must be non-empty (n >= 1)")
    if y.shape != K.shape[:1]:
        raise ValueError(f"y must have shape ({K.shape[0]},) to match K, got {y.shape}")
    check_lambdas(lambdas)
    n = K.shape[0]
    w = jnp.ones((n,), K.dtype) if sample_weight is None else sample_weight.astype(K.dtype)
    n_eff = jnp.sum(w)
    Kw = K * w[:, None] * w[None, :]
    lam = absolute_lambdas(lambdas, jnp.trace(Kw), n_eff)
    coef = solve_psd_path(Kw, y * w, n_eff * lam, solver, precision)
    return RidgePath(coef=coef * w[None, :], lambdas=lam)


def validation_mse(
    predictions: Float[Array, "n L"], y: Float[Array, " n"], sample_weight: Float[Array, " n"] | None = None
) -> Float[Array, " L"]:
    """Mean squared error of each column of ``predictions`` against ``y`` (weighted)."""
    err = (predictions - y[:, None]) ** 2
    if sample_weight is None:
        return jnp.mean(err, axis=0)
    return jnp.sum(err * sample_weight[:, None], axis=0) / jnp.sum(sample_weight)


def select_lambda(val_mse: Float[Array, " L"]) -> Array:
    """Index of the smallest validation error (NaN entries never win; all-NaN gives index 0)."""
    return jnp.argmin(jnp.where(jnp.isnan(val_mse), jnp.inf, val_mse))
