"""Kernel-regime baselines with the call shape of Algorithm 1: ``(key, target, config) -> Metrics``.

docs/setting.md, "What the paper proves": every rotation-invariant kernel, the NTK of the same network included, needs
``n ~ d^p`` samples for a degree-p target.  These baselines fit kernel ridge regression on the very samples Algorithm 1
sees (the same streams of ``key``: same data, same validation split, same network initialisation, same test samples):

* :func:`ntk_empirical`: the empirical NTK of the network at its symmetric initialisation
  (:func:`reprjax.kernels.empirical.entk_two_layer`, all parameters by default);
* :func:`ntk_infinite_ridge`: the infinite-width ReLU NTK at the same initialisation scales
  (:func:`reprjax.kernels.empirical.ntk_infinite`).

Random features (the first layer frozen at initialisation) live in :func:`reprjax.methods.algorithm1.random_features`.
Labels get the same pre-processing as Algorithm 1 (constant and linear parts removed, added back at prediction), so
that the comparison is of what each method learns beyond degree 1.
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.kernels import empirical as kernels
from reprjax.solvers import falkon
from reprjax.solvers import nystrom
from reprjax.solvers import ridge
from reprjax.maths.chunking import chunked_map
from reprjax.methods.contract import Metrics, label_moments, score_run
from reprjax.problem.data import sample_dataset, sample_roles, split_run_key
from reprjax.methods.run_config import RidgeCore
from reprjax.methods.scoring import mean_squared_error_with_se
from reprjax.network import init_symmetric
from reprjax.solvers.head import choose_strength
from reprjax.problem.targets import MultiIndexTarget

#: Relative ridge strengths for the exact kernel solver (multiples of tr(K)/n), 1e-9 .. 1: the validation error of
#: the eNTK and the infinite NTK keeps falling below 1e-6 and is within 1e-4 of its limit by 1e-9 where the
#: interpolant is best, the float32 and a float64 kernel matrix giving the same path (docs/measurements.md, "Ridge
#: strengths").  The solver takes the
#: cheaper of one eigendecomposition and one Cholesky per strength (:func:`reprjax.solvers.ridge.pick_solver`).
KERNEL_LAMBDAS: tuple[float, ...] = tuple(10.0**e for e in range(-9, 1))
#: The Nystrom solver's default grid reaches 1e-10: its normal equations and solve are float64, and with ``n >> M``
#: the validation error keeps falling below 1e-6 and levels off near 1e-9 (d = 16, n = 16,384, M = 9690: test
#: error 0.297 at 1e-6, 0.281 from 1e-9 down; docs/kernels_at_scale.md, "Kernel ridge strengths").
NYSTROM_LAMBDAS: tuple[float, ...] = (1e-10,) + KERNEL_LAMBDAS

#: Kernel ridge solvers: ``exact`` factorises the ``n x n`` kernel (:func:`reprjax.solvers.ridge.kernel_ridge_path`),
#: ``nystrom`` solves on ``centres`` Nystrom centres in ``O(block M + M^2)`` memory (:mod:`reprjax.solvers.nystrom`),
#: ``auto`` takes ``exact`` up to ``exact_n_max`` fitting samples and ``nystrom`` beyond; ``falkon`` solves the same
#: Nystrom problem by preconditioned conjugate gradients (:mod:`reprjax.solvers.falkon`, its defaults; when it pays
#: off: docs/kernels_at_scale.md, "Falkon").
KERNEL_SOLVERS = ("auto", "exact", "nystrom", "falkon")

#: Nystrom centres rule (``centres=None``): ``M = min(n_fit, CENTRES_CAP, max(DEFAULT_CENTRES,
#: CENTRES_PER_DEGREE4 * C(d + 4, 4)))``, ``C(d + 4, 4)`` the number of polynomials of degree <= 4 in ``d`` variables
#: (the paper target's degree): ``M`` centres span at most ``M`` functions.  Measured at d = 16 (C(20, 4) = 4845):
#: n = 8192, M = 4096 stays 0.04 - 0.07 above the exact solver; n = 65,536, M = 4096 -> 8192 lowers the error from
#: 0.298 to 0.229 (docs/kernels_at_scale.md, "Agreement with exact kernel ridge, and the number of centres").
DEFAULT_CENTRES = 4096
CENTRES_PER_DEGREE4 = 2.0
#: Largest automatic M: the solve holds about five ``M x M`` float64 matrices (5 GiB at 16384).
CENTRES_CAP = 16384


def auto_centres(d: int, n_fit: int) -> int:
    """Nystrom centres for inputs of dimension ``d`` and ``n_fit`` fitting samples (the rule above)."""
    _validate.check_int("d", d, low=1)
    _validate.check_int("n_fit", n_fit, low=1)
    wanted = max(DEFAULT_CENTRES, math.ceil(CENTRES_PER_DEGREE4 * math.comb(d + 4, 4)))
    return min(n_fit, CENTRES_CAP, wanted)


@struct.dataclass
class KernelConfig(RidgeCore):
    """Kernel ridge baseline; the shared fields are those of :class:`reprjax.methods.run_config.RidgeCore`.

    Attributes:
      n: total samples, validation included (>= 2).
      network: the network whose NTK is used (width, activation, init scales).
      data: label noise and covariance.
      lambdas: relative ridge strengths; ``None`` (default): :data:`KERNEL_LAMBDAS` for the exact solver,
        :data:`NYSTROM_LAMBDAS` for Nystrom (:attr:`strengths`); preprocess: Algorithm 1's label pre-processing.
      parts: parameter groups of the NTK (subset of ``("W", "a", "b")``).
      val_fraction, n_test, test_chunk: as in :class:`reprjax.methods.algorithm1.Algorithm1Config`.
      solver, precision: kernel ridge solver (see :mod:`reprjax.solvers.ridge`); ``refined`` by default.  Measured on
        the eNTK at n = 6554, d = 32: plain float32 Cholesky predictions already differ from float64 by at most 1.3e-5
        (relative) over the default grid (smallest strength 1e-5 tr(K)/n), at 0.57x the time; refinement adds
        O(n^2) per strength and closes that gap.
      block: rows per block when predicting (bounds the ``block x n`` cross-kernel) and, for Nystrom, per block of
        the normal equations (bounds the ``block x M`` kernel block).
      kernel_solver: ``auto``, ``exact``, ``nystrom`` or ``falkon`` (:data:`KERNEL_SOLVERS`); exact_n_max: the
        largest number of fitting samples ``auto`` solves exactly (the ``n x n`` factorisation: 8192 takes ~10 s
        and 1 GiB).
      centres: Nystrom centres ``M`` (at most the fitting samples); ``None`` (default): all the fitting samples
        up to ``exact_n_max`` of them (with ``kernel_solver="nystrom"``: exact kernel ridge in float64), the rule
        :func:`auto_centres` of the input dimension beyond (:meth:`centres_for`); kernel_dtype: dtype of the
        Nystrom kernel blocks (the normal equations are float64 either way, :mod:`reprjax.solvers.nystrom`).
      n_active: traced sample count (0/1 masks), as in Algorithm 1.
    """

    lambdas: tuple[float, ...] | None = struct.field(pytree_node=False, default=None)
    parts: tuple[str, ...] = struct.field(pytree_node=False, default=kernels.PARTS)
    block: int = struct.field(pytree_node=False, default=2048)
    kernel_solver: str = struct.field(pytree_node=False, default="auto")
    exact_n_max: int = struct.field(pytree_node=False, default=8192)
    centres: int | None = struct.field(pytree_node=False, default=None)
    kernel_dtype: str = struct.field(pytree_node=False, default="float32")
    n_active: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [p for p in self.parts if p not in kernels.PARTS]
        if bad or not self.parts:
            raise ValueError(f"parts must be a non-empty subset of {kernels.PARTS}, got {self.parts!r}")
        _validate.check_int("block", self.block, low=1)
        _validate.check_choice("kernel_solver", self.kernel_solver, KERNEL_SOLVERS)
        _validate.check_int("exact_n_max", self.exact_n_max, low=1)
        if self.centres is not None:
            _validate.check_int("centres", self.centres, low=1)
        _validate.check_choice("kernel_dtype", self.kernel_dtype, nystrom.KERNEL_DTYPES)
        if self.uses_nystrom and self.centres is not None and self.centres > self.n_fit:
            raise ValueError(f"centres = {self.centres} exceeds the n_fit = {self.n_fit} fitting samples (n = "
                             f"{self.n} less the validation share): centres must be in [1, {self.n_fit}]")
        if self.n_active is not None:
            _validate.check_number("n_active", self.n_active, low=2, high=self.n)

    @property
    def strengths(self) -> tuple[float, ...]:
        """The relative ridge strengths the run searches: ``lambdas``, or the solver's default grid."""
        if self.lambdas is not None:
            return self.lambdas
        return NYSTROM_LAMBDAS if self.uses_nystrom else KERNEL_LAMBDAS

    @property
    def n_fit(self) -> int:
        """Samples the kernel is fitted on (``n`` less the validation rows)."""
        return self.n - max(1, round(self.val_fraction * self.n))

    def centres_for(self, d: int) -> int:
        """Nystrom centres for inputs of dimension ``d``: ``centres``; when ``None``, every fitting sample up to
        ``exact_n_max`` of them (Nystrom is then exact kernel ridge, solved in float64) and :func:`auto_centres`
        beyond."""
        if self.centres is not None:
            return self.centres
        return self.n_fit if self.n_fit <= self.exact_n_max else auto_centres(d, self.n_fit)

    @property
    def uses_nystrom(self) -> bool:
        """Whether a Nystrom solver runs (``nystrom`` or ``falkon``, or ``auto`` past ``exact_n_max``)."""
        return (self.kernel_solver in ("nystrom", "falkon")
                or (self.kernel_solver == "auto" and self.n_fit > self.exact_n_max))


def kernel_ridge_run(
    key: PRNGKeyArray,
    target: MultiIndexTarget,
    config: KernelConfig,
    kernel_fn,
) -> Metrics:
    """Kernel ridge with ``kernel_fn(x1, x2) -> (n1, n2)`` (``x2=None``: the symmetric Gram of ``x1``) on the
    samples of ``key``, strength chosen on the validation split, scored on fresh test samples."""
    keys = split_run_key(key)
    ds = sample_dataset(keys.data, target, config.n, config.data, spike_key=keys.spike)
    roles = sample_roles(config.n, config.val_fraction, None, config.n_active)
    fit, val = roles.stage2, roles.val
    x_fit, y_fit = fit.take(ds.x), fit.take(ds.y)
    if config.preprocess:
        alpha, beta = label_moments(x_fit, y_fit, fit.weight)
    else:
        alpha, beta = jnp.zeros((), jnp.float32), jnp.zeros((target.d,), jnp.float32)
    residual = ds.y - alpha - ds.x @ beta
    x_val = val.take(ds.x)
    w_val = jnp.ones((x_val.shape[0],), jnp.float32) if val.weight is None else val.weight
    if config.uses_nystrom:
        solve = (lambda *a, **k: falkon.falkon_ridge_path(*a, **k).path) if config.kernel_solver == "falkon" \
            else nystrom.nystrom_ridge_path
        path = solve(kernel_fn, x_fit, fit.take(residual), config.strengths, config.centres_for(target.d),
                     sample_weight=fit.weight, block=config.block, kernel_dtype=config.kernel_dtype)

        def predict_all(x: Float[Array, "b d"]) -> Float[Array, "b L"]:
            return nystrom.predict(kernel_fn, x, path, config.block)
    else:
        path = ridge.kernel_ridge_path(kernel_fn(x_fit, None), fit.take(residual), config.strengths,
                                       sample_weight=fit.weight, solver=config.solver, precision=config.precision)

        def predict_all(x: Float[Array, "b d"]) -> Float[Array, "b L"]:
            return chunked_map(lambda xc: kernel_fn(xc, x_fit) @ path.coef.T, (x,), config.block)

    val_pred = predict_all(x_val)
    val_mse, val_se = mean_squared_error_with_se(val_pred, val.take(residual), w_val)
    pairs = ridge.paired_square_differences((val_pred - val.take(residual)[:, None]) ** 2, w_val)
    choice = choose_strength(path.coef, path.lambdas, val_mse, val_se, pairs, jnp.sum(w_val))
    index = choice.index

    if config.uses_nystrom:
        chosen = path.replace(coef=path.coef[index][None])

        def head_output(x: Float[Array, "b d"]) -> Float[Array, " b"]:
            return nystrom.predict(kernel_fn, x, chosen, config.block)[:, 0]
    else:
        def head_output(x: Float[Array, "b d"]) -> Float[Array, " b"]:
            return kernel_fn(x, x_fit) @ path.coef[index]

    def predictor(x: Float[Array, "b d"]) -> Float[Array, " b"]:
        return head_output(x) + alpha + x @ beta

    head = choice.replace(a=choice.a.astype(jnp.float32), lambdas=path.lambdas.astype(jnp.float32))
    return score_run(key, target, predictor, head, config)


def ntk_empirical(key: PRNGKeyArray, target: MultiIndexTarget, config: KernelConfig) -> Metrics:
    """Kernel ridge with the empirical NTK of the network at initialisation (the same ``W_0`` as Algorithm 1)."""
    params = init_symmetric(split_run_key(key).init, target.d, config.network)
    kernel_fn = functools.partial(_entk, params, act=config.network.activation, parts=config.parts)
    return kernel_ridge_run(key, target, config, kernel_fn)


def _entk(params, x1: Array, x2: Array | None, act: str, parts: tuple[str, ...]) -> Array:
    return kernels.entk_two_layer(params, x1, x2, act=act, parts=parts)


def ntk_infinite_ridge(key: PRNGKeyArray, target: MultiIndexTarget, config: KernelConfig) -> Metrics:
    """Kernel ridge with the infinite-width ReLU NTK at the network's initialisation scales."""
    if config.network.activation != "relu":
        raise ValueError(f"ntk_infinite is the ReLU kernel; network.activation must be 'relu', got "
                         f"{config.network.activation!r}")
    a_scale, bias_var = config.network.a_scale, config.network.init_bias_scale**2

    def kernel_fn(x1: Array, x2: Array | None) -> Array:
        return kernels.ntk_infinite(x1, x2, a_scale=a_scale, bias_var=bias_var, parts=config.parts)

    return kernel_ridge_run(key, target, config, kernel_fn)


__all__ = ["KERNEL_LAMBDAS", "KernelConfig", "NYSTROM_LAMBDAS", "kernel_ridge_run", "ntk_empirical",
           "ntk_infinite_ridge"]

