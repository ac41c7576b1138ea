"""Ridge and kernel ridge regression for a whole grid of regularisation strengths at once.

Convention (per-sample mean loss, the paper's second stage, docs/setting.md "Algorithm 1", step 3):

    a(lam) = argmin_a (1/n) sum_i w_i (phi_i . a - y_i)^2 + lam ||a||^2  =  (Phi^T W Phi + n lam I)^{-1} Phi^T W y

with sample weights ``w_i`` (``1`` by default; ``0/1`` masks let several sample counts share one compiled program)
and ``n = sum_i w_i``.  Kernel ridge is the same problem in dual form: ``alpha(lam) = (K + n lam I)^{-1} y`` and
predictions ``K(x, X) alpha``.

Scale-free grids: ``lambdas`` are given relative to ``tr(K) / n`` (the mean squared feature norm, equal to
``tr(Phi^T W Phi) / n``), so one grid suits features of any scale; the absolute values used are returned.

Precision (docs/measurements.md, "Ridge precision" and "Ridge strengths").  After the first step the features live
near a low-dimensional subspace and ``Phi^T Phi`` is numerically singular in float32, so the small eigen-directions
dominate the solution at small ``lam``; the validation error of Algorithm 1 keeps changing down to relative strengths
~1e-9, far below what a float32 Gram matrix resolves (its rounding, ~1e-7 of its norm, swamps every eigenvalue below).
So the feature paths (:func:`ridge_path`, and the head's streamed Gram in :mod:`reprjax.solvers.head`) form the Gram
matrix of the float32 features in float64 unless ``precision="float32"`` (the exact Gram of the stored features:
eigenvalues resolved down to ~1e-13 of the largest).  Factorising, by ``precision``:

* ``float64``: in float64 inside a scoped ``jax.enable_x64`` (the library never flips the global flag);
* ``float32``: in float32 (eigenvalues floored at 0; the Gram formed in float32 too);
* ``refined`` (the default): a grid long enough for one eigendecomposition (:func:`pick_solver`, or any grid holding
  strength 0) takes it in float64, once -- every strength then costs ``O(k^2)``, down to the ridgeless limit.  A short
  grid factorises in float32 per strength (Cholesky) and runs :data:`REFINEMENT_STEPS` steps of iterative refinement
  with float64 residuals, reaching the float64 answer at relative strengths down to ~1e-6 (8e-5 / 8e-6 relative
  prediction error at 1e-6 / 1e-5, n = 8192, m = 1024) at the float32 price.

Strength 0 is the ridgeless limit: the minimum-norm solution, from the eigendecomposition with eigenvalues below
``k eps ||G||`` (the rounding of the Gram matrix) treated as zero.  tests/test_ridge_baselines.py and
tests/test_algorithm.py check these paths against float64 solves.
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

#: Default grid of relative ridge strengths (multiples of tr(K)/n): the ridgeless limit 0, then 1e-10 to 1e4 at two
#: per decade (30 strengths, one eigendecomposition).  Measured along the whole path of Algorithm 1's head
#: (docs/measurements.md, "Ridge strengths"): the validation error is lowest anywhere from the limit to 1e-2, is within
#: 1e-4 of the limit by 1e-10 where the limit is best, and changes by < 1e-3 per step above 1e3.
DEFAULT_LAMBDAS: tuple[float, ...] = (0.0,) + tuple(float(v) for v in np.geomspace(1e-10, 1e4, 29))

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
#: against the float64 factorisation falls by about 10x per step at relative strength 1e-6).
REFINEMENT_STEPS = 6


def check_lambdas(lambdas: tuple[float, ...] | Float[Array, " L"], name: str = "lambdas",
                  allow_zero: bool = True) -> None:
    """Each ridge strength must be finite and >= 0 (> 0 with ``allow_zero=False``).

    Strength 0 is the ridgeless limit (the minimum-norm solution), which only an eigendecomposition reaches
    (module docstring): solvers that factorise per strength (Nystrom's normal equations, Falkon) pass
    ``allow_zero=False``.
    """
    if _validate.is_concrete(lambdas) or isinstance(lambdas, (tuple, list)):
        try:
            arr = np.asarray(lambdas, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a sequence of numbers, got {lambdas!r}") from None
        if arr.size == 0:
            raise ValueError(f"{name} must hold at least one value")
        if allow_zero and (not np.all(np.isfinite(arr)) or np.any(arr < 0)):
            raise ValueError(f"{name} must be finite and >= 0 (allowed range [0, inf); 0 is the ridgeless limit), "
                             f"got {arr.tolist()}")
        if not allow_zero and (not np.all(np.isfinite(arr)) or np.any(arr <= 0)):
            raise ValueError(f"{name} must be finite and > 0 (allowed range (0, inf); strength 0, the ridgeless "
                             f"limit, needs an eigendecomposition: use e.g. 1e-10), got {arr.tolist()}")


def has_zero(lambdas: tuple[float, ...] | Float[Array, " L"]) -> bool:
    """Whether a concrete grid holds strength 0 (a traced grid: ``False``, its zeros are still solved as limits)."""
    if _validate.is_concrete(lambdas) or isinstance(lambdas, (tuple, list)):
        return bool(np.any(np.asarray(lambdas, dtype=np.float64) == 0))
    return False


def precision_scope(precision: str):
    """A scoped ``jax.enable_x64`` where ``precision`` forms or factorises anything in float64 (else a no-op)."""
    _validate.check_choice("precision", precision, PRECISIONS)
    return jax.enable_x64(True) if precision in ("float64", "refined") else contextlib.nullcontext()


def gram_dtype(precision: str):
    """dtype of the Gram matrices of float32 features: float64 unless ``precision="float32"`` (module docstring).
    Arrays of that dtype exist only inside :func:`precision_scope`."""
    _validate.check_choice("precision", precision, PRECISIONS)
    return jnp.float32 if precision == "float32" else jnp.float64


def _factor_dtype(precision: str, solver: str, given):
    """float64 / float32 as asked; ``refined``: a Cholesky in float32, an eigendecomposition in the dtype the matrix
    was formed in (a float32 one is then refined)."""
    if precision != "refined":
        return jnp.float64 if precision == "float64" else jnp.float32
    return jnp.float32 if solver == "cholesky" else jnp.dtype(given)


def absolute_lambdas(
    lambdas: tuple[float, ...] | Float[Array, " L"], trace: Float[Array, ""], n_eff: Float[Array, ""]
) -> Float[Array, " L"]:
    """Relative strengths times ``tr(K) / n`` (``tr(K) = tr(Phi^T W Phi)``, the summed squared feature norms)."""
    check_lambdas(lambdas)
    return jnp.asarray(lambdas, trace.dtype) * (trace / n_eff)


@struct.dataclass
class RidgePath:
    """Solutions for a grid of ridge strengths.

    Attributes:
      coef: ``(L, k)`` coefficients (primal: ``k = m`` feature weights; dual: ``k = n`` sample weights).
      lambdas: ``(L,)`` absolute ridge strengths used (relative grid times ``tr(K)/n``).
    """

    coef: Float[Array, "L k"]
    lambdas: Float[Array, " L"]


def _inverse_eigh(g: Array, s: Array, eps: float):
    """From one eigendecomposition of ``g``: ``r (L, k) -> (g + s_l I)^{-1} r_l`` for every shift ``s_l``.

    A zero shift gives the minimum-norm solution: eigenvalues below ``k eps`` of the largest (``eps`` the unit
    round-off of ``g`` as it was formed) count as null directions there.
    """
    evals, evecs = _lapack.eigh(g)
    evals = jnp.maximum(evals, 0.0)  # PSD by construction: clip round-off below zero
    floor = g.shape[0] * eps * jnp.max(evals)
    denom = evals[None, :] + s[:, None]
    keep = denom > jnp.where(s[:, None] > 0, 0.0, floor)
    inv = jnp.where(keep, 1.0 / jnp.where(keep, denom, 1.0), 0.0)
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

    ``eigh`` costs about ``9 k^3`` FLOPs once, then ``O(k^2)`` per shift (a zero shift: the minimum-norm solution);
    ``cholesky`` costs ``k^3 / 3`` per shift; ``auto`` follows :func:`pick_solver`.  ``precision``: ``float64``
    factorises in float64; ``float32`` in float32; ``refined`` takes the eigendecomposition in float64 and refines
    float32 Choleskys with :data:`REFINEMENT_STEPS` steps of float64 residuals (module docstring).  A float64
    ``gram`` (formed inside :func:`precision_scope`) is used as it is.  Returns float32.
    """
    with precision_scope(precision):
        return _solve_psd_path(gram, rhs, shifts, solver, precision).astype(jnp.float32)


def _eps(a: Array) -> float:
    return float(jnp.finfo(a.dtype).eps)


def _solve_psd_path(gram: Array, rhs: Array, shifts: Array, solver: str, precision: str) -> Array:
    """:func:`solve_psd_path` in the factorisation's dtype (call inside :func:`precision_scope`)."""
    _validate.check_choice("solver", solver, SOLVERS)
    if solver == "auto":
        solver = pick_solver(gram.shape[0], shifts.shape[0], precision)
    dt = _factor_dtype(precision, solver, gram.dtype)
    refine = precision == "refined" and dt == jnp.float32
    g = gram.astype(dt)
    g = 0.5 * (g + g.T)
    b = rhs.astype(dt)
    s = shifts.astype(dt)
    g64 = b64 = s64 = None
    if refine:  # residuals against the matrix as given (float64 when formed so)
        g64 = gram.astype(jnp.float64)
        g64, b64, s64 = 0.5 * (g64 + g64.T), rhs.astype(jnp.float64), shifts.astype(jnp.float64)
    if solver == "eigh":
        inverse = _inverse_eigh(g, s, _eps(gram))
        coef = inverse(jnp.broadcast_to(b, (s.shape[0], b.shape[0])))
        return _refine(inverse, g64, b64, s64, coef.astype(jnp.float64), REFINEMENT_STEPS) if refine else coef
    eye = jnp.eye(g.shape[0], dtype=dt)

    def one(i):
        factor = _lapack.cholesky(g + s[i] * eye)
        a = _lapack.cho_solve(factor, b)
        if refine:
            a = _refine(lambda r: _lapack.cho_solve(factor, r[0])[None], g64, b64, s64[i][None],
                        a.astype(jnp.float64)[None], REFINEMENT_STEPS)[0]
        return a

    coef = jax.lax.map(one, jnp.arange(s.shape[0]))
    return _retry_failed_factorisations(coef, g, b, s, g64, b64, s64)


def _retry_failed_factorisations(coef: Array, g: Array, b: Array, s: Array, g64: Array | None, b64: Array | None,
                                 s64: Array | None) -> Array:
    """Strengths whose Cholesky failed (a pivot <= 0 in float32 gives NaN) are solved again from one
    eigendecomposition (eigenvalues floored at 0: never NaN), refined like the rest where ``refined``.

    A ``lax.cond``: the eigendecomposition runs only when a factorisation failed (under ``vmap`` the cond becomes
    a select and it runs every time).
    """
    bad = ~jnp.all(jnp.isfinite(coef), axis=1)

    def retry(coef):
        inverse = _inverse_eigh(g, s, float(jnp.finfo(g.dtype).eps))
        again = inverse(jnp.broadcast_to(b, (s.shape[0], b.shape[0])))
        if g64 is not None:
            again = _refine(inverse, g64, b64, s64, again.astype(jnp.float64), REFINEMENT_STEPS)
        return jnp.where(bad[:, None], again.astype(coef.dtype), coef)

    return jax.lax.cond(jnp.any(bad), retry, lambda c: c, coef)


def resolve_solver(solver: str, k: int, lambdas: tuple[float, ...] | Float[Array, " L"], precision: str) -> str:
    """The solver a grid of ``lambdas`` on a ``k x k`` system gets: :func:`pick_solver` for ``auto``, ``eigh``
    for any grid holding strength 0 (which a Cholesky cannot reach)."""
    _validate.check_choice("solver", solver, SOLVERS)
    zero = has_zero(lambdas)
    if solver == "cholesky" and zero:
        raise ValueError("solver='cholesky' cannot reach strength 0 (the ridgeless limit): use solver='eigh' or "
                         "'auto', or a grid of positive strengths")
    if solver != "auto":
        return solver
    return "eigh" if zero else pick_solver(k, int(np.size(lambdas)), precision)


def ridge_from_gram(
    gram: Float[Array, "m m"],
    moment: Float[Array, " m"],
    n_eff: Float[Array, ""],
    lambdas: tuple[float, ...] | Float[Array, " L"],
    solver: str = "auto",
    precision: str = "refined",
) -> RidgePath:
    """Primal ridge path from ``G = Phi^T W Phi``, ``c = Phi^T W y`` and ``n = sum w`` (e.g. accumulated in chunks).

    Pass a float64 ``G`` (formed inside :func:`precision_scope`, dtype :func:`gram_dtype`) for strengths below
    ~1e-7 (module docstring).  Returns float32 coefficients and strengths.
    """
    check_lambdas(lambdas)
    solver = resolve_solver(solver, gram.shape[0], lambdas, precision)
    with precision_scope(precision):
        lam = absolute_lambdas(lambdas, jnp.trace(gram), n_eff)
        coef = _solve_psd_path(gram, moment, n_eff * lam, solver, precision)
        return RidgePath(coef=coef.astype(jnp.float32), lambdas=lam.astype(jnp.float32))


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

    The Gram matrix (``m x m`` primal, ``n x n`` dual) of the features is formed in float64 unless
    ``precision="float32"`` (module docstring).

    Args:
      phi: design matrix (features).
      y: targets.
      lambdas: relative ridge strengths (multiples of ``tr(Phi^T W Phi)/n``), each >= 0 (0: the minimum-norm
        solution).
      sample_weight: optional 0/1 mask of the samples to use.
      form: ``primal`` (``m x m`` system, for ``n > m``), ``dual`` (``n x n``), or ``auto`` (the smaller).
      solver: ``eigh`` (one eigendecomposition for the grid), ``cholesky`` (one factorisation per strength) or
        ``auto`` (Cholesky for short grids of positive strengths, see :func:`resolve_solver`).
      precision: ``refined`` (the default), ``float64`` or ``float32`` (module docstring).
    """
    _validate.check_choice("form", form, ("auto", "primal", "dual"))
    if phi.ndim != 2 or y.shape != phi.shape[:1]:
        raise ValueError(f"phi must be (n, m) and y (n,), got {phi.shape} and {y.shape}")
    if phi.shape[0] == 0 or phi.shape[1] == 0:
        raise ValueError(f"phi must be non-empty, got shape {phi.shape}")
    check_lambdas(lambdas)
    n, m = phi.shape
    primal = form == "primal" or (form == "auto" and n > m)
    solver = resolve_solver(solver, m if primal else n, lambdas, precision)
    with precision_scope(precision):
        dt = gram_dtype(precision)
        p, yy = phi.astype(dt), y.astype(dt)
        w = jnp.ones((n,), dt) if sample_weight is None else sample_weight.astype(dt)
        if primal:
            pw = p * w[:, None]
            return ridge_from_gram(pw.T @ p, pw.T @ yy, jnp.sum(w), lambdas, solver, precision)
        alpha, lam = _kernel_path(p @ p.T, yy, lambdas, sample_weight, solver, precision)
        # push-through identity: a = Phi^T alpha, with alpha = 0 on masked samples
        return RidgePath(coef=(alpha.astype(dt) @ p).astype(jnp.float32), lambdas=lam.astype(jnp.float32))


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
    ``(n_new, L)``).  Strength 0 gives the minimum-norm interpolant, with eigenvalues of ``K`` below its rounding
    (``n eps`` of the largest, ``eps`` of ``K``'s dtype) as null directions.
    """
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be a square (n, n) matrix, got shape {K.shape}")
    if K.shape[0] == 0:
        raise ValueError("K must be non-empty (n >= 1)")
    if y.shape != K.shape[:1]:
        raise ValueError(f"y must have shape ({K.shape[0]},) to match K, got {y.shape}")
    check_lambdas(lambdas)
    solver = resolve_solver(solver, K.shape[0], lambdas, precision)
    with precision_scope(precision):
        coef, lam = _kernel_path(K, y, lambdas, sample_weight, solver, precision)
        return RidgePath(coef=coef.astype(jnp.float32), lambdas=lam.astype(jnp.float32))


def _kernel_path(K: Array, y: Array, lambdas, sample_weight: Array | None, solver: str, precision: str):
    """``(alpha (L, n), absolute strengths)`` in the factorisation's dtype (inside :func:`precision_scope`)."""
    n = K.shape[0]
    w = jnp.ones((n,), K.dtype) if sample_weight is None else sample_weight.astype(K.dtype)
    n_eff = jnp.sum(w)
    Kw = K * w[:, None] * w[None, :]
    lam = absolute_lambdas(lambdas, jnp.trace(Kw), n_eff)
    coef = _solve_psd_path(Kw, y.astype(K.dtype) * w, n_eff * lam, solver, precision)
    return coef * w[None, :].astype(coef.dtype), lam


def validation_mse(
    predictions: Float[Array, "n L"], y: Float[Array, " n"], sample_weight: Float[Array, " n"] | None = None
) -> Float[Array, " L"]:
    """Mean squared error of each column of ``predictions`` against ``y`` (weighted)."""
    err = (predictions - y[:, None]) ** 2
    if sample_weight is None:
        return jnp.mean(err, axis=0)
    return jnp.sum(err * sample_weight[:, None], axis=0) / jnp.sum(sample_weight)


def paired_square_differences(
    squared_errors: Float[Array, "n L"], weight: Float[Array, " n"] | None = None
) -> Float[Array, "L L"]:
    """``sum_i w_i (e_il^2 - e_ik^2)^2`` for every pair of strengths ``l, k``: the second moments of the paired
    differences of validation losses, formed from the differences themselves (no cancellation between two large
    sums), for :func:`difference_se`."""
    w = jnp.ones(squared_errors.shape[:1], squared_errors.dtype) if weight is None else weight
    diff = squared_errors[:, :, None] - squared_errors[:, None, :]
    return jnp.sum(w.astype(squared_errors.dtype)[:, None, None] * diff**2, axis=0)


def difference_se(
    val_mse: Float[Array, " L"], pair_sums: Float[Array, "L L"], n_val: Float[Array, ""], index: Array
) -> Float[Array, " L"]:
    """Standard error of ``val_mse[l] - val_mse[index]`` for every ``l``, the two estimates paired on the same
    validation samples: ``sqrt((mean of squared differences - difference^2) / (n - 1))``; 0 at ``index``."""
    gap = val_mse - val_mse[index]
    var = jnp.maximum(pair_sums[:, index] / n_val - gap**2, 0.0) / jnp.maximum(n_val - 1.0, 1.0)
    return jnp.sqrt(var)


#: The most a strength chosen above the validation minimum may cost, relative to the minimum (:func:`select_lambda`):
#: 1%.  Measured on Algorithm 1's head in docs/measurements.md, "Choosing the strength".
SELECTION_SLACK = 0.01
#: Validation errors within this relative distance of the minimum are ties whatever their standard errors: below the
#: rounding of float32 sums over the validation samples, where a flat stretch of the path (paired standard error ~0)
#: would otherwise be cut by rounding noise, and a vmapped run could choose another strength than a looped one.
SELECTION_TIE = 1e-5


def select_lambda(
    val_mse: Float[Array, " L"],
    lambdas: Float[Array, " L"] | None = None,
    diff_se: Float[Array, " L"] | None = None,
    slack: float = SELECTION_SLACK,
) -> Array:
    """Index of the chosen strength (NaN entries never win; all-NaN gives index 0).

    Without ``diff_se``: the smallest validation error.  With ``lambdas`` and ``diff_se`` (the standard error of each
    strength's validation error minus the minimum's, paired on the same samples: :func:`difference_se`): from the
    minimum, move to stronger ridges while the validation error stays within one paired standard error of the
    minimum *and* within ``slack`` (relative) of it (differences below :data:`SELECTION_TIE` are ties), and take
    the last -- the one-standard-error rule (Breiman et al. 1984; Hastie, Tibshirani & Friedman 2009, section
    7.10) with its cost capped.  Ties go to the smaller coefficients:
    a validation set of a few thousand samples cannot see the rare inputs on which a near-ridgeless
    head with huge coefficients blows up (a flat validation curve from strength 0 to 1e-6 hid a test error 4x the
    validation error), while the plain one-standard-error rule, whose unit grows with the heavy-tailed validation
    losses, walks far up the path and costs ~10% of the error (docs/measurements.md, "Choosing the strength").
    """
    v = jnp.where(jnp.isnan(val_mse), jnp.inf, val_mse)
    best = jnp.argmin(v)
    if lambdas is None or diff_se is None:
        return best
    tolerance = jnp.maximum(jnp.minimum(jnp.nan_to_num(diff_se, nan=0.0), slack * v[best]), SELECTION_TIE * v[best])
    ok = jnp.isfinite(v) & (v - v[best] <= tolerance)
    order = jnp.argsort(lambdas)
    ranks = jnp.arange(v.shape[0])
    rank_best = jnp.argmax(order == best)
    above = ranks >= rank_best
    blocked = jnp.cumsum(above & ~ok[order])
    chosen_rank = jnp.max(jnp.where(above & (blocked == 0), ranks, -1))
    return order[chosen_rank]
