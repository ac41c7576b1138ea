"""Stage 2 of Algorithm 1: fit the output weights ``a`` on fixed features ``act(W x + b)``, choosing the ridge
strength on validation samples (docs/setting.md, "Algorithm 1", step 3).

Two solvers of the same convex problem ``min_a (1/n) sum_i (a . phi_i - y_i)^2 + lam ||a||^2``:

* ``ridge``: the closed form for the whole grid of ``lam`` at once (:mod:`reprjax.solvers.ridge`).  In primal form the
  ``m x m`` Gram matrix ``Phi^T W Phi`` and right-hand side ``Phi^T W y`` of the float32 features are accumulated in
  float64 (unless ``precision="float32"``) over chunks of samples streamed from a source
  (:mod:`reprjax.problem.streams`), and one float64 eigendecomposition serves every strength of a long grid, the
  ridgeless limit 0 included (docs/measurements.md, "Ridge strengths"); the dual form (``n <= m``) holds the ``n x m``
  features, at most ``m x m``, and does the same with the ``n x n`` Gram matrix.
* ``gd``: ``steps`` of full-batch gradient descent with weight decay through optax (the paper's form), from
  ``a = 0`` with step ``1 / L`` (``L = 2 (s_max / n + lam)``, ``s_max`` by power iteration), for every ``lam``
  of the grid (vmapped).  The full-batch loss is a quadratic form in the same Gram matrix, so each step costs
  ``O(m^2)`` whatever ``n``.  It converges to the closed form (tests/test_algorithm.py).

The validation errors of every strength are accumulated over chunks of the validation rows too, so the whole fit
holds ``O(chunk * (d + m) + m^2)`` memory for any ``n``; the strength is chosen by the one-standard-error rule on
paired validation differences (:func:`reprjax.solvers.ridge.select_lambda`, docs/measurements.md, "Choosing the
strength").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Float

from reprjax.solvers import ridge
from reprjax.problem.data import Dataset, Role
from reprjax.network import TwoLayerParams, features
from reprjax.problem.streams import ArraySource, SampleSource, stream_sum

HEADS = ("ridge", "gd")


@struct.dataclass
class HeadFit:
    """Output weights chosen on validation, with the whole regularisation path's validation errors."""

    a: Float[Array, " m"]
    lambdas: Float[Array, " L"]  # absolute ridge strengths
    val_mse: Float[Array, " L"]
    index: Array  # position of the chosen strength in the grid
    val_mse_se: Float[Array, " L"] | None = None  # standard error of each plain Monte Carlo validation error
    # standard error of val_mse[l] - min(val_mse), paired on the same samples (the one-standard-error rule's unit)
    val_diff_se: Float[Array, " L"] | None = None


def _gd_path(gram: Array, moment: Array, n_eff: Array, lam: Array, steps: int) -> Array:
    """``steps`` of optax GD with weight decay ``2 lam`` on ``(1/n) sum w (phi a - y)^2``, for each ``lam``.

    The loss is ``(a^T G a - 2 a^T c) / n`` plus a constant, with ``G = Phi^T W Phi`` and ``c = Phi^T W y``, so its
    gradient ``2 (G a - c) / n`` needs only the Gram matrix.
    """

    def loss(a):
        return (a @ (gram @ a) - 2.0 * a @ moment) / n_eff

    # largest eigenvalue of G / n by power iteration (features are non-negative: fast convergence)
    def power(_, v):
        v = gram @ v
        return v / jnp.linalg.norm(v)

    m = gram.shape[0]
    v = jax.lax.fori_loop(0, 50, power, jnp.ones((m,), gram.dtype) / jnp.sqrt(m))
    s_max = v @ (gram @ v) / n_eff * 1.05  # 5% margin on the power-iteration estimate

    def one(l):
        opt = optax.chain(optax.add_decayed_weights(2.0 * l), optax.sgd(1.0 / (2.0 * (s_max + l))))
        a0 = jnp.zeros((m,), gram.dtype)

        def step(carry, _):
            a, state = carry
            updates, state = opt.update(jax.grad(loss)(a), state, a)
            return (optax.apply_updates(a, updates), state), None

        (a, _), _ = jax.lax.scan(step, (a0, opt.init(a0)), None, length=steps)
        return a

    return jax.vmap(one)(lam)


def _moments(params: TwoLayerParams, b: Dataset, w: Array, act: str, dtype) -> tuple[Array, Array, Array]:
    """``Phi^T W Phi``, ``Phi^T W y`` and ``sum w`` of one block, the float32 features' products summed in ``dtype``."""
    phi = features(params, b.x, act).astype(dtype)
    phiw = phi * w.astype(dtype)[:, None]
    return phiw.T @ phi, phiw.T @ b.y.astype(dtype), jnp.sum(w.astype(dtype))


def fit_second_layer_stream(
    params: TwoLayerParams,
    source: SampleSource,
    train: Role,
    val: Role,
    lambdas: tuple[float, ...],
    act: str = "relu",
    head: str = "ridge",
    gd_steps: int = 1000,
    solver: str = "auto",
    form: str = "auto",
    precision: str = "refined",
    chunk: int = 8192,
) -> HeadFit:
    """Fit ``a`` on ``act(W x + b)`` for every relative ridge strength in ``lambdas``, choose one on validation.

    Memory ``O(chunk * (d + m) + m^2 + L m)`` for any number of samples: the primal Gram matrix, its right-hand side
    and the validation errors are accumulated over blocks of ``chunk`` rows of ``source``; the dual form (taken by
    ``form="auto"`` when the role has ``n <= m`` rows) holds the ``n x m`` features.

    Args:
      params: network whose ``W`` and ``b`` are used (``params.a`` is ignored).
      source: the samples, labels already pre-processed; ``train`` and ``val`` say which rows play which role.
      lambdas: relative strengths (multiples of ``tr(K)/n``, see :mod:`reprjax.solvers.ridge`).
      head: ``ridge`` (closed form) or ``gd`` (optax gradient descent, ``gd_steps`` steps).
      solver, form, precision: passed to the ridge solver.
      chunk: samples per block.
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    m = params.W.shape[0]
    n_tr = train.stop - train.start

    if head == "ridge" and (form == "dual" or (form == "auto" and n_tr <= m)):
        block = source.rows(train.start, n_tr)
        path = ridge.ridge_path(features(params, block.x, act), block.y, lambdas, sample_weight=train.weight,
                                form="dual", solver=solver, precision=precision)
        coef, lam = path.coef, path.lambdas
        n_fit = jnp.asarray(n_tr, jnp.float32) if train.weight is None else jnp.sum(train.weight)
    elif head == "ridge":  # the Gram matrix of the float32 features accumulated in float64 (solvers/ridge.py)
        with ridge.precision_scope(precision):
            dt = ridge.gram_dtype(precision)
            gram, moment, n_eff = stream_sum(lambda b, w: _moments(params, b, w, act, dt), source, train, chunk)
            path = ridge.ridge_from_gram(gram, moment, n_eff, lambdas, solver, precision)
        coef, lam = path.coef, path.lambdas
        n_fit = n_eff.astype(jnp.float32)
    else:
        gram, moment, n_eff = stream_sum(lambda b, w: _moments(params, b, w, act, jnp.float32), source, train, chunk)
        lam = ridge.absolute_lambdas(lambdas, jnp.trace(gram), n_eff)
        coef = _gd_path(gram, moment, n_eff, lam, gd_steps)
        n_fit = n_eff

    def val_errors(b: Dataset, w: Array):
        sq = (features(params, b.x, act) @ coef.T - b.y[:, None]) ** 2
        return (jnp.sum(w[:, None] * sq, axis=0), jnp.sum(w[:, None] * sq**2, axis=0), jnp.sum(w),
                ridge.paired_square_differences(sq, w))

    sq, sq2, n_val, pairs = stream_sum(val_errors, source, val, chunk)
    val_mse = sq / n_val
    val_var = jnp.maximum(sq2 / n_val - val_mse**2, 0.0) / jnp.maximum(n_val - 1.0, 1.0)  # of the mean
    return choose_strength(coef, lam, val_mse, jnp.sqrt(val_var), pairs, n_val, n_fit)


def choose_strength(coef: Float[Array, "L k"], lambdas: Float[Array, " L"], val_mse: Float[Array, " L"],
                    val_mse_se: Float[Array, " L"], pair_sums: Float[Array, "L L"], n_val: Float[Array, ""],
                    n_fit: Float[Array, ""] | None = None) -> HeadFit:
    """The :class:`HeadFit` of a regularisation path: the strength of the one-standard-error rule on paired
    validation differences (:func:`reprjax.solvers.ridge.select_lambda`).

    With more fitting samples than features (``n_fit > k``) strength 0 is least squares, and some strength above 0
    has a smaller expected error than least squares (Hoerl & Kennard 1970, the existence theorem), so strength 0 is
    not a candidate there: its variance diverges as ``n_fit`` falls to ``k`` and a few hundred validation samples
    cannot see it (headline d = 16, n = 2048: validation 0.494, test 1.14 +- 0.08 at strength 0, against 0.26 at
    relative strength 1e-7; docs/measurements.md, "Choosing the strength").  Below ``k`` it stays: there it is the
    minimum-norm interpolant, often the best choice.
    """
    candidate = val_mse
    if n_fit is not None:
        least_squares = (lambdas == 0) & (n_fit > coef.shape[-1])
        candidate = jnp.where(least_squares, jnp.nan, val_mse)
    diff_se = ridge.difference_se(candidate, pair_sums, n_val, ridge.select_lambda(candidate))
    index = ridge.select_lambda(candidate, lambdas, diff_se)
    return HeadFit(a=coef[index], lambdas=lambdas, val_mse=val_mse, index=index, val_mse_se=val_mse_se,
                   val_diff_se=diff_se)


def fit_second_layer(
    params: TwoLayerParams,
    x: Float[Array, "n d"],
    y: Float[Array, " n"],
    train: Role,
    val: Role,
    lambdas: tuple[float, ...],
    act: str = "relu",
    head: str = "ridge",
    gd_steps: int = 1000,
    solver: str = "auto",
    form: str = "auto",
    precision: str = "refined",
    chunk: int = 8192,
) -> HeadFit:
    """:func:`fit_second_layer_stream` on stored samples ``x, y`` (pre-processed labels)."""
    return fit_second_layer_stream(params, ArraySource(Dataset(x=x, y=y, f=y)), train, val, lambdas, act, head,
                                   gd_steps, solver, form, precision, chunk)
