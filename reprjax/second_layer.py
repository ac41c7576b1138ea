"""Stage 2 of Algorithm 1: fit the output weights ``a`` on fixed features ``act(W x + b)``, choosing the ridge
strength on validation samples (PAPER.md, "Algorithm 1", step 3).

Two solvers of the same convex problem ``min_a (1/n) sum_i (a . phi_i - y_i)^2 + lam ||a||^2``:

* ``ridge``: the closed form for the whole grid of ``lam`` at once (:mod:`reprjax.ridge`).  In primal form the
  ``m x m`` Gram matrix is accumulated over chunks of samples, so memory is ``O(m^2 + chunk * m)`` for any ``n``.
* ``gd``: ``steps`` of full-batch gradient descent with weight decay through optax (the paper's form), from
  ``a = 0`` with step ``1 / L`` (``L = 2 (s_max / n + lam)``, ``s_max`` by power iteration), for every ``lam``
  of the grid (vmapped).  It converges to the closed form (tests/test_algorithm.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Float

from reprjax import ridge
from reprjax.chunking import chunked_map, chunked_sum
from reprjax.data import Role
from reprjax.network import TwoLayerParams, features

HEADS = ("ridge", "gd")


@struct.dataclass
class HeadFit:
    """Output weights chosen on validation, with the whole regularisation path's validation errors."""

    a: Float[Array, " m"]
    lambdas: Float[Array, " L"]  # absolute ridge strengths
    val_mse: Float[Array, " L"]
    index: Array  # position of the chosen strength in the grid


def _ones_if_none(weight: Array | None, n: int) -> Array:
    return jnp.ones((n,), jnp.float32) if weight is None else weight


def _gd_path(phi: Array, y: Array, w: Array, lam: Array, steps: int) -> Array:
    """``steps`` of optax GD with weight decay ``2 lam`` on ``(1/n) sum w (phi a - y)^2``, for each ``lam``."""
    n_eff = jnp.sum(w)

    def loss(a):
        return jnp.sum(w * (phi @ a - y) ** 2) / n_eff

    # largest eigenvalue of Phi^T W Phi / n by power iteration (features are non-negative: fast convergence)
    def power(_, v):
        v = phi.T @ (w * (phi @ v))
        return v / jnp.linalg.norm(v)

    v = jax.lax.fori_loop(0, 50, power, jnp.ones((phi.shape[1],), phi.dtype) / jnp.sqrt(phi.shape[1]))
    s_max = jnp.sum(w * (phi @ v) ** 2) / n_eff * 1.05  # 5% margin on the power-iteration estimate

    def one(l):
        opt = optax.chain(optax.add_decayed_weights(2.0 * l), optax.sgd(1.0 / (2.0 * (s_max + l))))
        a0 = jnp.zeros((phi.shape[1],), phi.dtype)

        def step(carry, _):
            a, state = carry
            updates, state = opt.update(jax.grad(loss)(a), state, a)
            return (optax.apply_updates(a, updates), state), None

        (a, _), _ = jax.lax.scan(step, (a0, opt.init(a0)), None, length=steps)
        return a

    return jax.vmap(one)(lam)


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
    """Fit ``a`` on ``act(W x + b)`` for every relative ridge strength in ``lambdas``, choose one on validation.

    Args:
      params: network whose ``W`` and ``b`` are used (``params.a`` is ignored).
      x, y: all samples and (pre-processed) labels; ``train`` and ``val`` say which rows play which role.
      lambdas: relative strengths (multiples of ``tr(K)/n``, see :mod:`reprjax.ridge`).
      head: ``ridge`` (closed form) or ``gd`` (optax gradient descent, ``gd_steps`` steps).
      solver, form, precision: passed to the ridge solver (``form="auto"`` takes primal when ``n > m``).
      chunk: samples per chunk when accumulating the primal Gram matrix and scoring validation.
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    x_tr, y_tr = train.take(x), train.take(y)
    w_tr = _ones_if_none(train.weight, x_tr.shape[0])
    m = params.W.shape[0]
    n_tr = x_tr.shape[0]

    if head == "ridge" and (form == "primal" or (form == "auto" and n_tr > m)):

        def moments(xc, yc, wc):
            phi = features(params, xc, act) * wc[:, None]
            return phi.T @ phi, phi.T @ yc, jnp.sum(wc)

        gram, moment, n_eff = chunked_sum(moments, (x_tr, y_tr, w_tr), chunk)
        path = ridge.ridge_from_gram(gram, moment, n_eff, lambdas, solver, precision)
        coef, lam = path.coef, path.lambdas
    elif head == "ridge":
        path = ridge.ridge_path(features(params, x_tr, act), y_tr, lambdas, sample_weight=train.weight,
                                form="dual", solver=solver, precision=precision)
        coef, lam = path.coef, path.lambdas
    else:
        phi = features(params, x_tr, act)
        lam = ridge.absolute_lambdas(lambdas, jnp.sum(w_tr[:, None] * phi**2), jnp.sum(w_tr))
        coef = _gd_path(phi, y_tr, w_tr, lam, gd_steps)

    x_val, y_val = val.take(x), val.take(y)
    w_val = _ones_if_none(val.weight, x_val.shape[0])
    preds = chunked_map(lambda xc: features(params, xc, act) @ coef.T, (x_val,), chunk)
    val_mse = ridge.validation_mse(preds, y_val, w_val)
    index = ridge.select_lambda(val_mse)
    return HeadFit(a=coef[index], lambdas=lam, val_mse=val_mse, index=index)
