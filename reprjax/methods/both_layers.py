"""Multi-step baseline: the same two-layer network trained on both layers by optax SGD or Adam.

Full-batch training of ``(a, W, b)`` from the symmetric initialisation on the square loss (with Algorithm 1's label
pre-processing, so that both methods fit the same residual), for ``steps`` steps; the parameters with the lowest
validation error seen during training are kept (early stopping on the same validation split Algorithm 1 uses to
choose its ridge strength).  Same call shape as the other methods: ``(key, target, config) -> Metrics``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jaxtyping import PRNGKeyArray

from reprjax import _validate
from reprjax.methods.contract import Metrics, Predictor, label_moments, score_run
from reprjax.problem.data import sample_dataset, sample_roles, split_run_key
from reprjax.methods.run_config import RunCore
from reprjax.methods.scoring import mean_squared_error_with_se
from reprjax.network import NetworkConfig, forward, init_symmetric
from reprjax.solvers.head import HeadFit
from reprjax.problem.targets import MultiIndexTarget

OPTIMIZERS = ("sgd", "adam")


@struct.dataclass
class MultiStepConfig(RunCore):
    """Full-batch training of both layers; the shared fields are those of :class:`reprjax.methods.run_config.RunCore`.

    Attributes:
      n: total samples, validation included (>= 2); val_fraction: share held out for early stopping.
      network: architecture; the default ``output_scale="sqrt"`` (``a = +-1/sqrt(m)``) keeps full-batch steps stable.
      optimizer: ``sgd`` or ``adam``; learning_rate (> 0); steps (>= 1); weight_decay (>= 0, decoupled).
      init_bias_scale_train: standard deviation of the biases at the start of training (> 0 lets ReLU units break
        the symmetry of ``b = 0``).
    """

    network: NetworkConfig = struct.field(pytree_node=False, default=NetworkConfig(output_scale="sqrt"))
    optimizer: str = struct.field(pytree_node=False, default="adam")
    learning_rate: float = 1e-3
    steps: int = struct.field(pytree_node=False, default=2000)
    weight_decay: float = 0.0
    init_bias_scale_train: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _validate.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _validate.check_number("learning_rate", self.learning_rate, low=0.0, low_open=True)
        _validate.check_int("steps", self.steps, low=1)
        _validate.check_number("weight_decay", self.weight_decay, low=0.0)
        _validate.check_number("init_bias_scale_train", self.init_bias_scale_train, low=0.0)


def optimizer(config: MultiStepConfig) -> optax.GradientTransformation:
    """The optax optimiser of ``config``, with decoupled weight decay (Loshchilov & Hutter 2019): the decay
    ``-learning_rate * weight_decay * w`` is added after the adaptive scaling, never scaled by it (``optax.adamw``);
    for SGD the two coincide (``-learning_rate * (g + weight_decay * w)``)."""
    if config.optimizer == "adam":
        return optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    return optax.chain(optax.add_decayed_weights(config.weight_decay), optax.sgd(config.learning_rate))


def train_multistep(key: PRNGKeyArray, target: MultiIndexTarget, config: MultiStepConfig) -> tuple[Predictor, HeadFit]:
    """Train both layers; returns the early-stopped predictor and its validation record."""
    keys = split_run_key(key)
    ds = sample_dataset(keys.data, target, config.n, config.data, spike_key=keys.spike)
    roles = sample_roles(config.n, config.val_fraction)
    x_tr, y_tr = roles.stage1.take(ds.x), roles.stage1.take(ds.y)
    x_val, y_val = roles.val.take(ds.x), roles.val.take(ds.y)
    if config.preprocess:
        alpha, beta = label_moments(x_tr, y_tr)
    else:
        alpha, beta = jnp.zeros((), jnp.float32), jnp.zeros((target.d,), jnp.float32)
    r_tr, r_val = y_tr - alpha - x_tr @ beta, y_val - alpha - x_val @ beta
    act = config.network.activation
    params = init_symmetric(keys.init, target.d, config.network)
    params = params.replace(b=config.init_bias_scale_train * jax.random.normal(keys.bias, params.b.shape))
    # the biases break the pair symmetry of f; restore f = 0 at init by keeping pairs' biases equal
    half = params.b.shape[0] // 2
    params = params.replace(b=jnp.concatenate([params.b[:half], params.b[:half]]))

    opt = optimizer(config)

    def loss(p):
        return jnp.mean((forward(p, x_tr, act) - r_tr) ** 2)

    def val_loss(p):
        return jnp.mean((forward(p, x_val, act) - r_val) ** 2)

    def step(carry, _):
        p, state, best_p, best_v = carry
        updates, state = opt.update(jax.grad(loss)(p), state, p)
        p = optax.apply_updates(p, updates)
        v = val_loss(p)
        better = v < best_v
        best_p = jax.tree.map(lambda new, old: jnp.where(better, new, old), p, best_p)
        return (p, state, best_p, jnp.where(better, v, best_v)), v

    init = (params, opt.init(params), params, val_loss(params))
    (_, _, best, best_v), _ = jax.lax.scan(step, init, None, length=config.steps)
    _, best_se = mean_squared_error_with_se(forward(best, x_val, act)[:, None], r_val)
    fit = HeadFit(a=best.a, lambdas=jnp.asarray([config.weight_decay], jnp.float32), val_mse=best_v[None],
                  index=jnp.zeros((), jnp.int32), val_mse_se=best_se)
    return Predictor(params=best, alpha=alpha, beta=beta, activation=act), fit


def run_multistep(key: PRNGKeyArray, target: MultiIndexTarget, config: MultiStepConfig) -> Metrics:
    """Train both layers and evaluate on fresh test samples (same streams of ``key`` as Algorithm 1)."""
    predictor, fit = train_multistep(key, target, config)
    return score_run(key, target, predictor, fit, config, predictor.params.W)
