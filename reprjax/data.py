"""Gaussian inputs (isotropic or spiked covariance), noisy labels, deterministic splits.

``x ~ N(0, I_d)`` by default; optionally ``x ~ N(0, I_d + theta mu mu^T)`` with a unit spike direction ``mu``
(Ba et al. 2023 take ``theta ~ d^beta``).  Labels are ``y = f*(x) + sigma eps`` with ``eps ~ N(0, 1)``.

Splits are drawn from ``jax.random.fold_in(key, i)`` for split ``i`` (train 0, validation 1, test 2): each split is a
deterministic function of the key and its own size, so enlarging the test set never changes the training data.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.targets import MultiIndexTarget

SPIKE_DIRECTIONS = ("target", "random")


@struct.dataclass
class DataConfig:
    """How inputs and labels are drawn.

    Attributes:
      noise: label noise standard deviation ``sigma >= 0``.
      spike: spike strength ``theta >= 0`` (0 = isotropic).
      spike_direction: ``"target"`` puts the spike on the first row of ``U`` (the setting of Ba et al. 2023, where
        the spike carries information about the target), ``"random"`` on a direction drawn from the key.
    """

    noise: float = 0.0
    spike: float = 0.0
    spike_direction: str = struct.field(pytree_node=False, default="target")

    def __post_init__(self) -> None:
        _validate.check_number("noise", self.noise, low=0.0)
        _validate.check_number("spike", self.spike, low=0.0)
        _validate.check_choice("spike_direction", self.spike_direction, SPIKE_DIRECTIONS)


@struct.dataclass
class Dataset:
    """Inputs ``x (n, d)``, noisy labels ``y (n,)`` and the noise-free values ``f = f*(x) (n,)``."""

    x: Float[Array, "n d"]
    y: Float[Array, " n"]
    f: Float[Array, " n"]

    @property
    def n(self) -> int:
        return int(self.x.shape[-2])


@struct.dataclass
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset


def sample_inputs(
    key: PRNGKeyArray,
    n: int,
    d: int,
    spike: float | Float[Array, ""] = 0.0,
    spike_vector: Float[Array, " d"] | None = None,
) -> Float[Array, "n d"]:
    """``n`` draws of ``x ~ N(0, I_d + spike * mu mu^T)`` (``mu = spike_vector`` normalised; isotropic if None).

    Uses ``x = g + (sqrt(1 + spike) - 1) <mu, g> mu`` with ``g ~ N(0, I_d)``, whose covariance is
    ``I + ((1 + spike) - 1) mu mu^T``.
    """
    _validate.check_int("n", n, low=1)
    _validate.check_int("d", d, low=1)
    _validate.check_number("spike", spike, low=0.0)
    g = jax.random.normal(key, (n, d), dtype=jnp.float32)
    if spike_vector is None:
        return g
    if spike_vector.shape != (d,):
        raise ValueError(f"spike_vector must have shape (d,) = ({d},), got {spike_vector.shape}")
    mu = spike_vector / jnp.linalg.norm(spike_vector)
    return g + (jnp.sqrt(1.0 + spike) - 1.0) * (g @ mu)[:, None] * mu[None, :]


def spike_vector(key: PRNGKeyArray, target: MultiIndexTarget, config: DataConfig) -> Float[Array, " d"]:
    """The spike direction ``mu`` for ``config`` (first row of ``U`` or a random unit vector)."""
    if config.spike_direction == "target":
        return target.U[0]
    v = jax.random.normal(key, (target.d,), jnp.float32)
    return v / jnp.linalg.norm(v)


def sample_dataset(
    key: PRNGKeyArray,
    target: MultiIndexTarget,
    n: int,
    config: DataConfig = DataConfig(),
    d: int | None = None,
    spike_key: PRNGKeyArray | None = None,
) -> Dataset:
    """``n`` labelled samples ``(x, y = f*(x) + sigma eps)`` from ``target``.

    Args:
      key: PRNG key for inputs and noise.
      target: the multi-index target.
      n: number of samples (>= 1).
      config: noise and covariance.
      d: optional input dimension to check against ``target.d``.
      spike_key: key for a random spike direction (default: derived from ``key``); pass the same one to datasets
        that must share the covariance.
    """
    if d is not None and d != target.d:
        raise ValueError(f"d = {d} does not match the target's dimension target.d = {target.d}")
    k_x, k_eps = jax.random.split(key)
    mu = spike_vector(jax.random.fold_in(key, 3) if spike_key is None else spike_key, target, config)
    # a concrete zero spike is exactly isotropic: skip the rank-one update
    isotropic = _validate.is_concrete(config.spike) and float(config.spike) == 0.0
    x = sample_inputs(k_x, n, target.d, config.spike, None if isotropic else mu)
    f = target(x)
    y = f + config.noise * jax.random.normal(k_eps, (n,), jnp.float32)
    return Dataset(x=x, y=y, f=f)


def make_splits(
    key: PRNGKeyArray,
    target: MultiIndexTarget,
    n_train: int,
    n_val: int,
    n_test: int,
    config: DataConfig = DataConfig(),
) -> Splits:
    """Deterministic train / validation / test splits from one key (split ``i`` uses ``fold_in(key, i)``).

    The spike direction is shared by the three splits (drawn from ``fold_in(key, 3)``).
    """
    _validate.check_int("n_train", n_train, low=1)
    _validate.check_int("n_val", n_val, low=1)
    _validate.check_int("n_test", n_test, low=1)
    spike_key = jax.random.fold_in(key, 3)
    train, val, test = (
        sample_dataset(jax.random.fold_in(key, i), target, n, config, spike_key=spike_key)
        for i, n in enumerate((n_train, n_val, n_test))
    )
    return Splits(train=train, val=val, test=test)


# ------------------------------------------------------------------------------------------------ run layout
class RunKeys(NamedTuple):
    """The independent streams of one training run, derived from its key so that every method sees the same data.

    ``data``: training (and validation) samples; ``init``: first-layer initialisation; ``bias``: the re-drawn
    biases; ``test``: fresh test samples; ``spike``: a random spike direction shared by all samples.
    """

    data: PRNGKeyArray
    init: PRNGKeyArray
    bias: PRNGKeyArray
    test: PRNGKeyArray
    spike: PRNGKeyArray


def split_run_key(key: PRNGKeyArray) -> RunKeys:
    """Split a run key into its named streams (``fold_in(key, i)``)."""
    return RunKeys(*(jax.random.fold_in(key, i) for i in range(5)))


@dataclasses.dataclass(frozen=True)
class Role:
    """The samples playing one role (validation, stage 1, stage 2): rows ``[start, stop)`` of the sample arrays,
    optionally with a 0/1 ``weight`` over those rows (used when the active sample count is traced)."""

    start: int
    stop: int
    weight: Array | None = None

    def take(self, array: Array) -> Array:
        return array[self.start:self.stop]


@dataclasses.dataclass(frozen=True)
class SampleRoles:
    val: Role
    stage1: Role
    stage2: Role


def sample_roles(
    n: int,
    val_fraction: float,
    split_fraction: float | None = None,
    n_active: int | Array | None = None,
) -> SampleRoles:
    """Assign ``n`` samples to validation, stage 1 (first-layer step) and stage 2 (second-layer fit).

    Rows ``[0, n_val)`` are validation (``n_val = max(1, round(val_fraction * n))``), used only to choose the ridge
    strength; the remaining ``n_fit`` rows train.  Shared samples (``split_fraction=None``, the paper's analysis):
    both stages use all ``n_fit``; sample splitting: stage 1 takes the first ``round(split_fraction * n_fit)``
    of them and stage 2 the rest.  With a (possibly traced) ``n_active <= n`` only the first ``n_active`` rows are
    used, expressed as 0/1 weights over all ``n`` rows so that several sample counts share one compiled program.
    """
    if n_active is None:
        n_val = max(1, round(val_fraction * n))
        if split_fraction is None:
            fit = Role(n_val, n)
            return SampleRoles(Role(0, n_val), fit, fit)
        n1 = max(1, round(split_fraction * (n - n_val)))
        return SampleRoles(Role(0, n_val), Role(n_val, n_val + n1), Role(n_val + n1, n))
    idx = jnp.arange(n)
    n_act = jnp.asarray(n_active)
    n_val = jnp.maximum(1, jnp.round(val_fraction * n_act)).astype(jnp.int32)

    def mask(lo, hi):
        return ((idx >= lo) & (idx < hi)).astype(jnp.float32)

    val = Role(0, n, mask(0, n_val))
    if split_fraction is None:
        fit = Role(0, n, mask(n_val, n_act))
        return SampleRoles(val, fit, fit)
    n1 = jnp.maximum(1, jnp.round(split_fraction * (n_act - n_val))).astype(jnp.int32)
    return SampleRoles(val, Role(0, n, mask(n_val, n_val + n1)), Role(0, n, mask(n_val + n1, n_act)))
