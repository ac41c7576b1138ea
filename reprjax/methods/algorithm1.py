"""Algorithm 1 of Damian, Lee & Soltanolkotabi (2022) end to end, as pure functions (docs/setting.md, "Algorithm 1").

0. Label pre-processing: ``alpha = mean(y)``, ``beta = mean(y x)`` on the stage-1 samples,
   ``y <- y - alpha - <beta, x>``;
   the final predictor adds ``alpha + <beta, x>`` back.
1. One first-layer step with weight decay ``lambda_1``:
   ``W_1 = W_0 - eta_1 (grad_W L(theta_0) + lambda_1 W_0)``, ``L = (1/n) sum_i (f(x_i) - y_i)^2`` differentiated by
   ``jax.grad``; ``lambda_1 = 1/eta_1`` by default, which gives ``W_1 = -eta_1 grad_W L``.
2. Biases re-drawn, ``b ~ N(0, s^2)``.
3. Second layer fitted on ``act(W_1 x + b)`` (ridge for a grid of strengths chosen on validation, or optax GD).

Step size: ``eta_1 = eta_scale * sqrt(d) / a_scale``.  For ReLU the population step is
``w_j^(1) ~ 2 eta_1 a_j H w_j / sqrt(2 pi)``; with ``w_j ~ N(0, I/d)`` and the paper target (``H = I_r/sqrt(r)`` on
``span(U)``) its norm is about ``0.8 eta_scale``, i.e. order one, comparable to the unit-variance biases.
The default ``eta_scale = 1`` was chosen by the sweep in ``evidence/eta_scale_sweep.py`` (see ``DEFAULT_ETA_SCALE``).

Training samples are streamed (:mod:`reprjax.problem.streams`): :func:`train_one_step` draws each chunk of samples from
the run's data key when a pass needs it, so a run holds ``O(chunk * (d + m) + m^2)`` memory whatever ``n``.

Everything is jit- and vmap-friendly: ``jax.vmap(train_one_step, in_axes=(0, None, None))(keys, target, config)``
trains one network per key; numeric config fields (``eta_scale``, ``weight_decay``, ``bias_scale``, noise, spike,
``n_active``) are PyTree leaves and can be vmapped too; shapes and choices are static.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.problem import streams
from reprjax.maths.chunking import chunked_sum
# the run contract: imported from reprjax.methods.contract, and re-exported here where it always lived
from reprjax.methods.contract import (  # noqa: F401
    Metrics,
    Predictor,
    failed_runs_report,
    label_moments,
    mean_over_runs,
    score_run,
    summarise_run,
)
from reprjax.problem.data import DataConfig, Dataset, SampleRoles, sample_roles, split_run_key
from reprjax.methods.run_config import FirstLayerCore
from reprjax.network import (NetworkConfig, TwoLayerParams, chunk_gradient, init_independent, init_symmetric,
                             stream_square_loss_gradient)
from reprjax.solvers.head import HEADS, HeadFit, fit_second_layer_stream
from reprjax.problem.targets import MultiIndexTarget

#: Where the training samples live: drawn chunk by chunk in every pass, or drawn once and held (see the config).
SAMPLES = ("stream", "store")

#: First layers of the random-features baseline: m independent directions, or the symmetric initialisation's m/2 pairs.
RANDOM_FEATURES_INITS = ("independent", "paired")

#: eta_1 = DEFAULT_ETA_SCALE * sqrt(d) / a_scale.  Chosen by evidence/eta_scale_sweep.py (paper target, m = 1024,
#: d in {16, 32}, n in {8 d^2, 32 d^2}, 4 seeds): mean normalised test MSE 0.204, 0.141, 0.136, 0.217, 0.357 for
#: eta_scale = 0.25, 0.5, 1, 2, 4 -- the best is 1, where ||w_j^(1)|| ~ 0.8 matches the unit bias scale.
DEFAULT_ETA_SCALE = 1.0


@struct.dataclass
class Algorithm1Config(FirstLayerCore):
    """Configuration of Algorithm 1, with the paper's defaults; the shared fields (``n``, ``network``, ``data``,
    ``preprocess``, ``val_fraction``, ``n_test``, ``test_chunk``, ``lambdas``, ``solver``, ``precision``,
    ``eta_scale``, ``weight_decay``, ``bias_scale``, ``form``, ``chunk``) are those of
    :class:`reprjax.methods.run_config.FirstLayerCore`.

    Leaves (vmappable): ``data`` (noise, spike), ``eta_scale``, ``weight_decay``, ``bias_scale``, ``n_active``; every
    other field is static.

    Attributes:
      eta_scale: ``eta_1 = eta_scale * sqrt(d) / a_scale`` (> 0).
      weight_decay: ``lambda_1`` of the first step (>= 0); ``None`` means ``1 / eta_1`` (the paper's choice).
      train_first_layer: ``False`` skips the step (random features: ``W`` frozen at initialisation).
      random_features_init: the frozen first layer when ``train_first_layer=False``: ``independent`` (``m``
        independent directions, the default) or ``paired`` (the symmetric initialisation: ``m/2`` directions, each
        twice).
      normalize_rows: rescale each row of ``W_1`` to unit norm after the step.
      head: ``ridge`` (closed form) or ``gd`` (optax gradient descent with weight decay).
      gd_steps: steps of the ``gd`` head.
      split_fraction: ``None`` = the same samples for both stages (the paper's analysis); a number in (0, 1) = the
        share of the training samples used by stage 1, the rest by stage 2 (sample splitting).
      samples: ``stream`` (the default) draws each chunk from the run's key when a pass needs it: memory
        ``O(chunk * (d + m) + m^2)`` whatever ``n``, at the price of drawing the inputs once per pass (label moments,
        first step, Gram matrix, and the validation rows: about ``3.2 n d`` normal draws); ``store`` draws the
        ``n x d`` inputs once and holds them (``4 n d`` more bytes, one draw).  Both see the same samples.
      n_active: if set (possibly traced), only the first ``n_active <= n`` samples are used (0/1 masks), so that
        several sample counts share one compiled program.
    """

    eta_scale: float = DEFAULT_ETA_SCALE
    train_first_layer: bool = struct.field(pytree_node=False, default=True)
    random_features_init: str = struct.field(pytree_node=False, default="independent")
    samples: str = struct.field(pytree_node=False, default="stream")
    normalize_rows: bool = struct.field(pytree_node=False, default=False)
    head: str = struct.field(pytree_node=False, default="ridge")
    gd_steps: int = struct.field(pytree_node=False, default=2000)
    split_fraction: float | None = struct.field(pytree_node=False, default=None)
    n_active: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _validate.check_choice("head", self.head, HEADS)
        _validate.check_choice("random_features_init", self.random_features_init, RANDOM_FEATURES_INITS)
        _validate.check_choice("samples", self.samples, SAMPLES)
        _validate.check_int("gd_steps", self.gd_steps, low=1)
        if self.split_fraction is not None:
            _validate.check_number("split_fraction", self.split_fraction, low=0.0, high=1.0, low_open=True)
        _validate.check_stage_sizes(self.n, self.val_fraction, self.split_fraction)
        if self.n_active is not None:
            _validate.check_count("n_active", self.n_active, low=2, high=self.n)
            if _validate.is_concrete(self.n_active):  # the roles are computed from the count in use
                for n_act in {int(v) for v in np.ravel(np.asarray(self.n_active))}:
                    _validate.check_stage_sizes(n_act, self.val_fraction, self.split_fraction, name="n_active")

    def eta(self, d: int) -> Float[Array, ""] | float:
        """``eta_1 = eta_scale * sqrt(d) / a_scale``."""
        return self.eta_scale * math.sqrt(d) / self.network.a_scale

    def roles(self) -> SampleRoles:
        return sample_roles(self.n, self.val_fraction, self.split_fraction, self.n_active)


@struct.dataclass
class OneStepResult:
    """A trained network with the diagnostics of its two stages."""

    predictor: Predictor
    head: HeadFit
    eta: Float[Array, ""]
    W0: Float[Array, "m d"]


# ------------------------------------------------------------------------------------------------------- stages
def _weights(weight: Array | None, n: int) -> Array:
    return jnp.ones((n,), jnp.float32) if weight is None else weight


def square_loss_gradient(
    params: TwoLayerParams,
    x: Float[Array, "n d"],
    y: Float[Array, " n"],
    weight: Float[Array, " n"] | None = None,
    act: str = "relu",
    chunk: int = 16384,
) -> Float[Array, "m d"]:
    """``grad_W L`` for ``L = (1/n) sum_i w_i (f(x_i) - y_i)^2`` by ``jax.grad``, accumulated over sample chunks."""
    w = _weights(weight, x.shape[0])
    grad = chunked_sum(lambda xc, yc, wc: chunk_gradient(params, xc, yc, wc, act), (x, y, w), chunk)
    return grad / jnp.sum(w)


def first_layer_step(
    params: TwoLayerParams,
    x: Float[Array, "n d"],
    y: Float[Array, " n"],
    eta: Float[Array, ""] | float,
    weight_decay: Float[Array, ""] | float | None = None,
    weight: Float[Array, " n"] | None = None,
    act: str = "relu",
    chunk: int = 16384,
) -> Float[Array, "m d"]:
    """Step 1: ``W_1 = W_0 - eta (grad_W L(theta_0) + lambda_1 W_0)`` with ``lambda_1 = 1/eta`` if ``None``."""
    lam = 1.0 / eta if weight_decay is None else weight_decay
    grad = square_loss_gradient(params, x, y, weight, act, chunk)
    return params.W - eta * (grad + lam * params.W)


def redraw_biases(key: PRNGKeyArray, m: int, scale: Float[Array, ""] | float = 1.0) -> Float[Array, " m"]:
    """Step 2: fresh biases ``b ~ N(0, scale^2)``."""
    return scale * jax.random.normal(key, (m,), jnp.float32)


# ------------------------------------------------------------------------------------------------------ training
def _source(key: PRNGKeyArray, target: MultiIndexTarget, config: Algorithm1Config) -> streams.SampleSource:
    keys = split_run_key(key)
    source = streams.KeyedSource(keys.data, target, config.data, keys.spike)
    return source if config.samples == "stream" else streams.hold(source, config.n, config.chunk)


def _first_layer(key: PRNGKeyArray, d: int, config: Algorithm1Config) -> TwoLayerParams:
    if not config.train_first_layer and config.random_features_init == "independent":
        return init_independent(key, d, config.network)
    return init_symmetric(key, d, config.network)


def _moments(source: streams.SampleSource, role, d: int, config: Algorithm1Config):
    if config.preprocess:
        return streams.label_moments(source, role, config.chunk)
    return jnp.zeros((), jnp.float32), jnp.zeros((d,), jnp.float32)


def train_from_source(key: PRNGKeyArray, source: streams.SampleSource, d: int,
                      config: Algorithm1Config) -> OneStepResult:
    """Algorithm 1 on the ``config.n`` samples of ``source``; ``key`` draws the initialisation and the biases.

    Each stage is a pass over the samples in chunks of ``config.chunk`` (:mod:`reprjax.problem.streams`): label moments,
    the first-layer gradient, the second layer's Gram matrix, the validation errors.  Memory
    ``O(chunk * (d + m) + m^2)`` beyond what ``source`` holds.
    """
    keys = split_run_key(key)
    roles = config.roles()
    act = config.network.activation
    params, params0, alpha, beta, eta = _steps_0_to_2(keys, source, d, config)
    residual = streams.Residualised(source, alpha, beta)
    fit = _fit_head(params, residual, roles.stage2, roles.val, act, config)
    predictor = Predictor(params=params.replace(a=fit.a), alpha=alpha, beta=beta, activation=act)
    return OneStepResult(predictor=predictor, head=fit, eta=eta, W0=params0.W)


def learn_first_layer(key: PRNGKeyArray, target: MultiIndexTarget, config: Algorithm1Config) -> Predictor:
    """Steps 0-2 of :func:`train_one_step` alone (the same ``W_1`` and biases, no head: ``a = 0``), on ``config.n``
    streamed samples of ``target``: the source network of :func:`transfer` without the cost of a source head."""
    params, _, alpha, beta, _ = _steps_0_to_2(split_run_key(key), _source(key, target, config), target.d, config)
    return Predictor(params=params, alpha=alpha, beta=beta, activation=config.network.activation)


def _steps_0_to_2(keys, source: streams.SampleSource, d: int, config: Algorithm1Config):
    roles = config.roles()
    act = config.network.activation
    params0 = _first_layer(keys.init, d, config)

    # step 0: label pre-processing on the stage-1 samples
    alpha, beta = _moments(source, roles.stage1, d, config)
    residual = streams.Residualised(source, alpha, beta)

    # step 1: one large first-layer step
    eta = jnp.asarray(config.eta(d), jnp.float32)
    if config.train_first_layer:
        grad = stream_square_loss_gradient(params0, residual, roles.stage1, act, config.chunk)
        lam = 1.0 / eta if config.weight_decay is None else config.weight_decay
        W1 = params0.W - eta * (grad + lam * params0.W)
    else:
        W1 = params0.W
    if config.normalize_rows:
        W1 = W1 / jnp.maximum(jnp.linalg.norm(W1, axis=1, keepdims=True), 1e-30)

    # step 2: fresh biases (step 3, the second layer, is the caller's)
    params = TwoLayerParams(a=jnp.zeros_like(params0.a), W=W1,
                            b=redraw_biases(keys.bias, config.network.width, config.bias_scale))
    return params, params0, alpha, beta, eta


def _fit_head(params, source, train, val, act, config: Algorithm1Config) -> HeadFit:
    return fit_second_layer_stream(params, source, train, val, config.lambdas, act, config.head, config.gd_steps,
                                   config.solver, config.form, config.precision, config.chunk)


def train_on_data(key: PRNGKeyArray, data: Dataset, config: Algorithm1Config) -> OneStepResult:
    """Algorithm 1 on given samples (``data.n == config.n``); ``key`` draws the initialisation and the biases."""
    if data.n != config.n:
        raise ValueError(f"data has n = {data.n} samples but config.n = {config.n}")
    return train_from_source(key, streams.ArraySource(data), data.x.shape[-1], config)


def train_one_step(key: PRNGKeyArray, target: MultiIndexTarget, config: Algorithm1Config) -> OneStepResult:
    """Algorithm 1 on ``config.n`` fresh samples of ``target``, streamed from ``key``'s data stream.

    The samples are those of ``sample_dataset(split_run_key(key).data, target, config.n, ...)``, drawn chunk by
    chunk, never stored: memory ``O(chunk * (d + m) + m^2)`` for any ``n`` (see :func:`train_from_source`); with
    ``config.samples="store"`` they are drawn once and held.
    """
    return train_from_source(key, _source(key, target, config), target.d, config)


def evaluate(
    key: PRNGKeyArray, target: MultiIndexTarget, result: OneStepResult, config: Algorithm1Config
) -> Metrics:
    """Test errors on fresh samples (``split_run_key(key).test``), alignment of ``W_1`` and a failure flag."""
    return score_run(key, target, result.predictor, result.head, config, result.predictor.params.W)


def run(key: PRNGKeyArray, target: MultiIndexTarget, config: Algorithm1Config) -> Metrics:
    """Train with Algorithm 1 and evaluate: the ``(key, target, config) -> metrics`` call shared by all methods."""
    return evaluate(key, target, train_one_step(key, target, config), config)


def random_features(key: PRNGKeyArray, target: MultiIndexTarget, config: Algorithm1Config) -> Metrics:
    """Baseline: the same pipeline with the first layer frozen at initialisation (same width, biases and ridge).

    The frozen layer has ``m`` independent directions (``config.random_features_init="independent"``, the default;
    ``"paired"`` keeps the symmetric initialisation's ``m/2`` directions, each twice).
    """
    return run(key, target, config.replace(train_first_layer=False))


# ------------------------------------------------------------------------------------------------------ transfer
def transfer(
    key: PRNGKeyArray, source: Predictor, target: MultiIndexTarget, config: Algorithm1Config
) -> Metrics:
    """Reuse a learned first layer (``W_1`` and biases of ``source``) and refit only the head on ``config.n`` samples
    of a new task sharing ``U``; label pre-processing is recomputed on the new samples.

    The samples are those :func:`run` draws from the same ``key``, so ``run(key, target, config)`` is training
    from scratch on exactly the same data; they are streamed (memory ``O(chunk * (d + m) + m^2)`` for any ``n``).
    """
    if source.params.W.shape[-1] != target.d:
        raise ValueError(f"the source network has d = {source.params.W.shape[-1]} but the target has d = {target.d}")
    if source.params.W.shape[0] != config.network.width:
        raise ValueError(f"the source network has width {source.params.W.shape[0]} but config.network.width = "
                         f"{config.network.width}")
    samples = _source(key, target, config)
    roles = config.roles()
    fit_role = roles.stage2  # all training samples fit the head (stage 1 is already done)
    if config.split_fraction is not None:
        roles = sample_roles(config.n, config.val_fraction, None, config.n_active)
        fit_role = roles.stage2
    alpha, beta = _moments(samples, fit_role, target.d, config)
    act = source.activation
    fit = _fit_head(source.params, streams.Residualised(samples, alpha, beta), fit_role, roles.val, act, config)
    predictor = Predictor(params=source.params.replace(a=fit.a), alpha=alpha, beta=beta, activation=act)
    return score_run(key, target, predictor, fit, config, source.params.W)
