"""First-layer training over ``T`` steps as one ``lax.scan``, then the second layer by ridge as in Algorithm 1.

Beyond the paper's single step (docs/setting.md, "Algorithm 1"), three protocols of the literature, all on the square
loss ``L = (1/b) sum_i (f(x_i) - y_i)^2`` of Algorithm 1's pre-processed labels, with the output weights ``a`` frozen at
their symmetric initialisation while the first layer trains:

* ``mode="reuse"``: full-batch GD, the same ``n_fit`` samples at every step (Dandi et al. 2024, "The benefits of
  reusing batches for gradient descent in two-layer networks");
* ``mode="fresh"`` with a large batch: GD on a fresh batch at each step (Dandi et al. 2023, "How two-layer neural
  networks learn, one (giant) step at a time": GiantStep);
* ``mode="fresh"`` with a small batch and ``scaling="online"``: online SGD (Ben Arous, Gheissari & Jagannath 2021;
  Arnaboldi et al., ``giant_learning``).

One step is ``W <- W - eta_t (grad_W L(W) + lambda_t W)`` with ``eta_t = eta * s(t)``, ``s`` an optax schedule
(``constant``, ``cosine`` or ``exponential`` down to ``schedule_end``), optionally followed by projecting each row
on the unit sphere (``normalize_rows``, the spherical SGD of Ben Arous et al.).  ``weight_decay=None`` is the
paper's ``lambda_0 = 1/eta_0`` at the first step (so ``W_1 = -eta grad L(W_0)``) and no decay afterwards; with
``steps=1`` the result is exactly Algorithm 1's ``W_1`` on the same samples.

Step sizes (``a_scale = |a_j|``, so that the per-neuron displacement does not depend on the output scale):

* ``paper``: ``eta = eta_scale sqrt(d) / a_scale`` (the one-step size of Algorithm 1);
* ``giant_step``: ``eta = eta_scale sqrt(b / d) / a_scale`` for batches of ``b`` samples: GiantStep's
  ``eta ~ p d^((l-1)/2)`` for ``b ~ d^l`` with ``a = 1/p``; equal to ``paper`` at ``b = d^2``;
* ``online``: ``eta = eta_scale b / (d a_scale)``: the ``delta / d`` step of online SGD at ``b = 1`` (Ben Arous
  et al. 2021), grown linearly with the batch (sensible up to ``b ~ d``, where it meets ``giant_step``).

The second layer is then fitted on ``act(W_T x + b)`` with re-drawn biases by :func:`second_layer.fit_second_layer`
on all ``n_fit`` training samples (shared samples, as the paper's analysis).  Memory: the ``n x d`` samples are
drawn once (the same stream as Algorithm 1, so the methods see the same data); the first-layer gradient of each
step is accumulated over ``chunk``-sample blocks.  Overlap trajectories (:mod:`reprjax.methods.overlaps`) are recorded
every ``record_every`` steps by nesting two scans (no ``cond`` in the step).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import Array, Float, Int, PRNGKeyArray

from reprjax import _validate
from reprjax.methods.algorithm1 import OneStepResult, redraw_biases, square_loss_gradient
from reprjax.methods.contract import Predictor, label_moments
from reprjax.methods.run_config import FirstLayerCore
from reprjax.problem.data import Role, sample_dataset, split_run_key
from reprjax.network import TwoLayerParams, init_symmetric
from reprjax.methods.overlaps import Overlaps, overlaps
from reprjax.solvers.head import HeadFit, fit_second_layer
from reprjax.problem.targets import MultiIndexTarget

MODES = ("reuse", "fresh")
SCALINGS = ("paper", "giant_step", "online")
SCHEDULES = ("constant", "cosine", "exponential")


@struct.dataclass
class FirstLayerTrainingConfig(FirstLayerCore):
    """``T`` first-layer steps then a ridge head (module docstring); the shared fields are those of
    :class:`reprjax.methods.run_config.FirstLayerCore`.

    Static: every field except ``data``, ``eta_scale``, ``weight_decay`` and ``bias_scale`` (the leaves: vmappable).

    Attributes:
      n: total samples, validation included (>= 2); val_fraction: share held out to choose the ridge strength.
      mode: ``reuse`` (one batch of all ``n_fit`` training samples at every step) or ``fresh`` (disjoint batches).
      steps: ``T`` (>= 1); in ``fresh`` mode give ``steps`` or ``batch_size`` (the other follows from ``n_fit``).
      batch_size: samples per step in ``fresh`` mode (``None`` in ``reuse`` mode).
      scaling: ``paper``, ``giant_step`` or ``online`` (module docstring); eta_scale: its prefactor (> 0).
      weight_decay: ``lambda`` at every step (>= 0), or ``None`` for the paper's ``1/eta_0`` at the first step only.
      schedule, schedule_end: optax step-size schedule and its final factor in ``(0, 1]``.
      normalize_rows: project rows of ``W`` on the unit sphere after each step.
      record_every: record overlaps every this many steps (``None``: no trajectory).
      bias_scale: standard deviation of the biases re-drawn before the head (>= 0).
      spectrum_samples: Monte Carlo samples for the Hermite spectrum in the metrics (>= 2).
      the rest: as :class:`reprjax.methods.algorithm1.Algorithm1Config`.
    """

    mode: str = struct.field(pytree_node=False, default="reuse")
    steps: int | None = struct.field(pytree_node=False, default=2)
    batch_size: int | None = struct.field(pytree_node=False, default=None)
    scaling: str = struct.field(pytree_node=False, default="paper")
    schedule: str = struct.field(pytree_node=False, default="constant")
    schedule_end: float = struct.field(pytree_node=False, default=0.1)
    normalize_rows: bool = struct.field(pytree_node=False, default=False)
    record_every: int | None = struct.field(pytree_node=False, default=None)
    spectrum_samples: int = struct.field(pytree_node=False, default=8192)

    def __post_init__(self) -> None:
        super().__post_init__()
        _validate.check_choice("mode", self.mode, MODES)
        _validate.check_choice("scaling", self.scaling, SCALINGS)
        _validate.check_choice("schedule", self.schedule, SCHEDULES)
        if self.mode == "reuse":
            _validate.check_int("steps", self.steps, low=1)
            if self.batch_size is not None:
                raise ValueError(f"batch_size must be None in reuse mode (the batch is all n_fit samples), got "
                                 f"{self.batch_size}")
        else:
            if (self.steps is None) == (self.batch_size is None):
                raise ValueError("fresh mode needs exactly one of steps and batch_size, got "
                                 f"steps = {self.steps}, batch_size = {self.batch_size}")
            n_fit = self.n_fit
            if self.steps is not None:
                _validate.check_int("steps", self.steps, low=1, high=n_fit)
            else:
                _validate.check_int("batch_size", self.batch_size, low=1, high=n_fit)
        _validate.check_number("schedule_end", self.schedule_end, low=0.0, high=1.0, low_open=True)
        if self.record_every is not None:
            _validate.check_int("record_every", self.record_every, low=1)
        _validate.check_int("spectrum_samples", self.spectrum_samples, low=2)

    @property
    def n_val(self) -> int:
        return max(1, round(self.val_fraction * self.n))

    @property
    def n_fit(self) -> int:
        return self.n - self.n_val

    @property
    def num_steps(self) -> int:
        """``T``."""
        if self.mode == "reuse" or self.steps is not None:
            return int(self.steps)
        return self.n_fit // self.batch_size

    @property
    def batch(self) -> int:
        """Samples per step: ``n_fit`` when reusing, else ``batch_size`` or ``n_fit // steps``."""
        if self.mode == "reuse":
            return self.n_fit
        return int(self.batch_size) if self.batch_size is not None else self.n_fit // int(self.steps)

    def eta(self, d: int) -> Float[Array, ""] | float:
        """The base step size ``eta`` of ``scaling`` (module docstring)."""
        a = self.network.a_scale
        if self.scaling == "paper":
            return self.eta_scale * math.sqrt(d) / a
        if self.scaling == "giant_step":
            return self.eta_scale * math.sqrt(self.batch / d) / a
        return self.eta_scale * self.batch / (d * a)

    def step_factor(self) -> optax.Schedule:
        """The optax schedule ``s(t)`` multiplying ``eta`` (``s(0) = 1``)."""
        T = self.num_steps
        if self.schedule == "constant":
            return optax.constant_schedule(1.0)
        if self.schedule == "cosine":
            return optax.cosine_decay_schedule(1.0, max(T - 1, 1), alpha=self.schedule_end)
        return optax.exponential_decay(1.0, max(T - 1, 1), decay_rate=self.schedule_end)


@struct.dataclass
class Trajectory:
    """Overlaps recorded during training: ``steps (K,)`` (the step after which each record was taken, 0 = init)."""

    steps: Int[Array, " K"]
    overlaps: Overlaps


@struct.dataclass
class TrainingResult(OneStepResult):
    """A network trained by ``T`` first-layer steps and a ridge head, with its diagnostics and overlap record."""

    trajectory: Trajectory | None = None


def first_layer_update(
    params: TwoLayerParams,
    t: Int[Array, ""] | int,
    x: Float[Array, "b d"],
    y: Float[Array, " b"],
    eta: Float[Array, ""] | float,
    config: FirstLayerTrainingConfig,
) -> Float[Array, "m d"]:
    """One step ``W <- W - eta s(t) (grad_W L + lambda_t W)`` (then the sphere projection if asked): the scan body.

    Args:
      params: current network (``a`` and ``b`` frozen, ``W`` trained).
      t: step index (0-based).
      x, y: this step's batch and pre-processed labels.
      eta: base step size (:meth:`FirstLayerTrainingConfig.eta`).
      config: the training config.

    Returns:
      The new first layer.
    """
    eta_t = eta * config.step_factor()(t)
    if config.weight_decay is None:  # the paper's first step: W_1 = -eta grad L(W_0)
        lam = jnp.where(jnp.asarray(t) == 0, 1.0 / eta_t, 0.0)
    else:
        lam = config.weight_decay
    grad = square_loss_gradient(params, x, y, None, config.network.activation, config.chunk)
    W = params.W - eta_t * (grad + lam * params.W)
    if config.normalize_rows:
        W = W / jnp.maximum(jnp.linalg.norm(W, axis=1, keepdims=True), 1e-30)
    return W


def _batch(x: Array, r: Array, t: Array, config: FirstLayerTrainingConfig) -> tuple[Array, Array]:
    if config.mode == "reuse":
        return x, r
    b = config.batch
    return jax.lax.dynamic_slice_in_dim(x, t * b, b), jax.lax.dynamic_slice_in_dim(r, t * b, b)


def train_first_layer(
    params: TwoLayerParams,
    x: Float[Array, "n d"],
    r: Float[Array, " n"],
    eta: Float[Array, ""] | float,
    config: FirstLayerTrainingConfig,
    U: Float[Array, "k d"] | None = None,
) -> tuple[Float[Array, "m d"], Trajectory | None]:
    """``T = config.num_steps`` first-layer steps as one scan (nested when recording).

    Args:
      params: initial network.
      x, r: the training samples and pre-processed labels (``fresh`` mode uses rows ``[t b, (t+1) b)`` at step t).
      eta: base step size.
      config: the training config.
      U: directions the overlaps are measured against (needed when ``config.record_every`` is set).

    Returns:
      ``(W_T, trajectory)``; the trajectory holds records at steps ``0, s, 2s, ...`` and at ``T``.
    """
    T = config.num_steps

    def body(W, t):
        xb, rb = _batch(x, r, t, config)
        return first_layer_update(params.replace(W=W), t, xb, rb, eta, config), None

    if config.record_every is None:
        W, _ = jax.lax.scan(body, params.W, jnp.arange(T))
        return W, None
    if U is None:
        raise ValueError("record_every is set: pass U, the directions the overlaps are measured against")
    s = min(config.record_every, T)
    K, rest = divmod(T, s)

    def outer(W, start):
        W, _ = jax.lax.scan(body, W, start + jnp.arange(s))
        return W, overlaps(W, U)

    W, recorded = jax.lax.scan(outer, params.W, s * jnp.arange(K))
    steps = [jnp.zeros((1,), jnp.int32), s * jnp.arange(1, K + 1, dtype=jnp.int32)]
    records = [jax.tree.map(lambda v: v[None], overlaps(params.W, U)), recorded]
    if rest:
        W, _ = jax.lax.scan(body, W, K * s + jnp.arange(rest))
        steps.append(jnp.full((1,), T, jnp.int32))
        records.append(jax.tree.map(lambda v: v[None], overlaps(W, U)))
    stacked = jax.tree.map(lambda *v: jnp.concatenate(v), *records)
    return W, Trajectory(steps=jnp.concatenate(steps), overlaps=stacked)


def train(key: PRNGKeyArray, target: MultiIndexTarget, config: FirstLayerTrainingConfig) -> TrainingResult:
    """Draw ``config.n`` samples (Algorithm 1's streams of ``key``), train ``T`` steps, fit the ridge head.

    Same samples, initialisation and biases as :func:`reprjax.methods.algorithm1.train_one_step` for the same key.
    """
    keys = split_run_key(key)
    data = sample_dataset(keys.data, target, config.n, config.data, spike_key=keys.spike)
    d = target.d
    act = config.network.activation
    val, fit = Role(0, config.n_val), Role(config.n_val, config.n)
    x1, y1 = fit.take(data.x), fit.take(data.y)
    if config.preprocess:
        alpha, beta = label_moments(x1, y1)
    else:
        alpha, beta = jnp.zeros((), jnp.float32), jnp.zeros((d,), jnp.float32)
    residual = data.y - alpha - data.x @ beta
    params0 = init_symmetric(keys.init, d, config.network)
    eta = jnp.asarray(config.eta(d), jnp.float32)
    W, trajectory = train_first_layer(params0, x1, fit.take(residual), eta, config, target.U)
    params = TwoLayerParams(a=jnp.zeros_like(params0.a), W=W,
                            b=redraw_biases(keys.bias, config.network.width, config.bias_scale))
    head = fit_second_layer(params, data.x, residual, fit, val, config.lambdas, act, "ridge", 1, config.solver,
                            config.form, config.precision, config.chunk)
    predictor = Predictor(params=params.replace(a=head.a), alpha=alpha, beta=beta, activation=act)
    return TrainingResult(predictor=predictor, head=head, eta=eta, W0=params0.W, trajectory=trajectory)
