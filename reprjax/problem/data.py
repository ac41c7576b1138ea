"""Gaussian inputs (isotropic or spiked covariance), noisy labels, deterministic splits.

``x ~ N(0, I_d)`` by default; optionally ``x ~ N(0, I_d + theta mu mu^T)`` with a unit spike direction ``mu``
(Ba et al. 2023 take ``theta ~ d^beta``).  Labels are ``y = f*(x) + sigma eps`` with ``eps ~ N(0, 1)``.

Under a spike the target is by default evaluated on the whitened latent (``DataConfig.spike_target``,
:func:`target_inputs`): ``f*(x) = g(z)`` with ``z = (U Sigma U^T)^{-1/2} U x ~ N(0, I_r)`` for every ``theta``, so the
target's law is that of the isotropic problem and only the input geometry changes -- Ba et al. (2023, "Learning in
the presence of low-dimensional structure: a spiked random matrix perspective")'s ``f*(x) = g(<x, mu> /
sqrt(1 + theta))`` when ``mu`` is the first row of ``U``.

Splits are drawn from ``jax.random.fold_in(key, i)`` for split ``i`` (train 0, validation 1, test 2): each split is a
deterministic function of the key and its own size, so enlarging the test set never changes the training data.

Samples are keyed per row: row ``i`` of a draw is a function of the key and ``i`` alone (:func:`normal_rows` evaluates
the counter-based threefry generator at the counters of rows ``[start, start + rows)``), so any block of rows can be
drawn without the rows before it (:func:`sample_rows`, the training stream of :mod:`reprjax.problem.streams`), and the
first ``n`` samples of a larger draw are the samples of a draw of size ``n`` (the prefix property the sample masks
rely on).  With jax's default partitionable threefry the values equal ``jax.random.normal(key, (n, d))`` bit for bit.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.extend.random as jex_random
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.problem.targets import MultiIndexTarget

SPIKE_DIRECTIONS = ("target", "random")
SPIKE_TARGETS = ("normalised", "raw")


@struct.dataclass
class DataConfig:
    """How inputs and labels are drawn.

    Attributes:
      noise: label noise standard deviation ``sigma >= 0``.
      spike: spike strength ``theta >= 0`` (0 = isotropic).
      spike_direction: ``"target"`` puts the spike on the first row of ``U`` (the setting of Ba et al. 2023, where
        the spike carries information about the target), ``"random"`` on a direction drawn from the key.
      spike_target: what the target is evaluated on under a spike (static; no effect when ``spike = 0``).
        ``"normalised"``: the whitened latent ``z = (U Sigma U^T)^{-1/2} U x ~ N(0, I_r)``, ``Sigma = I +
        theta mu mu^T`` (Ba et al. 2023: the target's law is fixed, the input geometry changes).  ``"raw"``:
        ``g(U x)`` on the spiked inputs, whose latent has covariance ``I + theta v v^T`` (``v = U mu``), so the
        target's law changes with ``theta``: a degree-``k`` part along ``v`` is scaled by ``(1 + theta |v|^2)^(k/2)``,
        so the degree-4 energy grows with ``theta`` (like ``theta^4`` for the spike on ``U[0]``).
    """

    noise: float = 0.0
    spike: float = 0.0
    spike_direction: str = struct.field(pytree_node=False, default="target")
    spike_target: str = struct.field(pytree_node=False, default="normalised")

    def __post_init__(self) -> None:
        _validate.check_number("noise", self.noise, low=0.0)
        _validate.check_number("spike", self.spike, low=0.0)
        _validate.check_choice("spike_direction", self.spike_direction, SPIKE_DIRECTIONS)
        _validate.check_choice("spike_target", self.spike_target, SPIKE_TARGETS)


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
    return _inputs_rows(key, 0, n, d, spike, spike_vector)


def _inputs_rows(key: PRNGKeyArray, start: int | Array, rows: int, d: int, spike, spike_vector) -> Array:
    _validate.check_int("d", d, low=1)
    _validate.check_number("spike", spike, low=0.0)
    g = normal_rows(key, start, rows, d)
    if spike_vector is None:
        return g
    if spike_vector.shape != (d,):
        raise ValueError(f"spike_vector must have shape (d,) = ({d},), got {spike_vector.shape}")
    mu = spike_vector / jnp.linalg.norm(spike_vector)
    return g + (jnp.sqrt(1.0 + spike) - 1.0) * (g @ mu)[:, None] * mu[None, :]


# -------------------------------------------------------------------------------------------- keyed rows
#: Largest row width :func:`normal_rows` supports (the counter arithmetic splits row indices into 16-bit halves).
MAX_ROW_WIDTH = 2**16 - 1


def _row_counters(start: int | Array, rows: int, d: int) -> tuple[Array, Array]:
    """High and low 32-bit words of the flat counters ``(start + i) * d + j`` (64-bit, as ``uint64`` row-major iota)."""
    i = jnp.asarray(start).astype(jnp.uint32) + jnp.arange(rows, dtype=jnp.uint32)
    i_lo, i_hi = i & 0xFFFF, i >> 16
    p_lo, p_hi = i_lo * jnp.uint32(d), i_hi * jnp.uint32(d)  # each < 2^32 as d < 2^16
    part = (p_hi & 0xFFFF) << 16
    lo = part + p_lo
    hi = (p_hi >> 16) + (lo < part).astype(jnp.uint32)
    j = jnp.arange(d, dtype=jnp.uint32)
    lo2 = lo[:, None] + j[None, :]
    hi2 = hi[:, None] + (lo2 < lo[:, None]).astype(jnp.uint32)
    return hi2, lo2


def normal_rows(key: PRNGKeyArray, start: int | Array, rows: int, d: int) -> Float[Array, "rows d"]:
    """Rows ``[start, start + rows)`` of a standard normal ``(N, d)`` float32 draw from ``key``, for any ``N``.

    Row ``i`` depends only on ``key`` and ``i``: the threefry-2x32 bits at the flat counters ``i * d + j``, mapped to
    a uniform on ``(-1, 1)`` by the mantissa construction and to a normal by ``sqrt(2) erfinv``, which is what
    ``jax.random.normal(key, (N, d))`` computes under partitionable threefry (jax's default), so the values equal
    its rows bit for bit (tests/test_streaming.py).  Memory ``O(rows * d)``.

    Args:
      key: a threefry PRNG key (typed or raw ``uint32[2]``).
      start: first row (may be traced); rows: how many (static); d: row width, ``1 <= d <= MAX_ROW_WIDTH``.

    Returns:
      The ``(rows, d)`` float32 block.
    """
    _validate.check_int("rows", rows, low=1)
    _validate.check_int("d", d, low=1, high=MAX_ROW_WIDTH)
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    if data.shape != (2,):
        raise ValueError(f"key must be a threefry key (2 uint32 words), got key data of shape {data.shape}")
    hi, lo = _row_counters(start, rows, d)
    b1, b2 = jex_random.threefry2x32_p.bind(data[0], data[1], hi, lo)
    bits = b1 ^ b2
    floats = jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32) - jnp.float32(1.0)
    low = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)
    u = jnp.maximum(low, floats * (np.float32(1.0) - low) + low)
    return np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u)


def spike_vector(key: PRNGKeyArray, target: MultiIndexTarget, config: DataConfig) -> Float[Array, " d"]:
    """The spike direction ``mu`` for ``config`` (first row of ``U`` or a random unit vector)."""
    if config.spike_direction == "target":
        return target.U[0]
    v = jax.random.normal(key, (target.d,), jnp.float32)
    return v / jnp.linalg.norm(v)


def target_inputs(
    x: Float[Array, "n d"], U: Float[Array, "r d"], spike: float | Float[Array, ""], mu: Float[Array, " d"]
) -> Float[Array, "n d"]:
    """``x'`` with ``U x' = (U Sigma U^T)^{-1/2} U x`` for ``Sigma = I + spike mu mu^T`` (``mu`` normalised inside).

    With ``v = U mu`` and ``w = U^T v`` (``mu`` projected on ``span(U)``, ``|w| = |v|`` as ``U`` has orthonormal rows),
    ``(U Sigma U^T)^{-1/2} = I - c v v^T / |v|^2`` with ``c = 1 - 1 / sqrt(1 + spike |v|^2)``, so
    ``x' = x - c <w, x> w / |w|^2`` (``x`` itself when ``v = 0``).  A target ``g(U x)`` evaluated at ``x'`` is ``g(z)``
    with ``z ~ N(0, I_r)`` whatever the spike; for ``mu = U[0]``, ``z_1 = <x, mu> / sqrt(1 + spike)`` (Ba et al.
    2023).  For ``spike = 0`` (even traced) ``c = 0`` and ``x' = x`` exactly.
    """
    mu = mu / jnp.linalg.norm(mu)
    w = (U @ mu) @ U
    w2 = jnp.sum(w**2)
    c = 1.0 - 1.0 / jnp.sqrt(1.0 + spike * w2)
    coef = jnp.where(w2 > 0.0, c / jnp.where(w2 > 0.0, w2, 1.0), 0.0)
    return x - (coef * (x @ w))[:, None] * w[None, :]


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
    _validate.check_int("n", n, low=1)
    return sample_rows(key, target, 0, n, config, spike_key)


def sample_rows(
    key: PRNGKeyArray,
    target: MultiIndexTarget,
    start: int | Array,
    rows: int,
    config: DataConfig = DataConfig(),
    spike_key: PRNGKeyArray | None = None,
) -> Dataset:
    """Samples ``[start, start + rows)`` of the draw :func:`sample_dataset` makes from ``key``, for any larger ``n``.

    Inputs and noise are keyed per row (:func:`normal_rows`), so the block equals rows ``start:start + rows`` of
    ``sample_dataset(key, target, n)`` for every ``n >= start + rows`` (inputs bit for bit; labels up to the
    rounding of ``f*``'s matrix products).  Memory ``O(rows * d)``.

    Args:
      key, target, config, spike_key: as for :func:`sample_dataset`.
      start: first sample index (may be traced); rows: block size (static).
    """
    k_x, k_eps = jax.random.split(key)
    mu = spike_vector(jax.random.fold_in(key, 3) if spike_key is None else spike_key, target, config)
    # a concrete zero spike is exactly isotropic: skip the rank-one update
    isotropic = _validate.is_concrete(config.spike) and float(config.spike) == 0.0
    x = _inputs_rows(k_x, start, rows, target.d, config.spike, None if isotropic else mu)
    whiten = not isotropic and config.spike_target == "normalised"
    f = target(target_inputs(x, target.U, config.spike, mu) if whiten else x)
    y = f + config.noise * normal_rows(k_eps, start, rows, 1)[:, 0]
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
    """The samples playing one role (validation, stage 1, stage 2): rows ``[start, stop)`` of the sample arrays
    (static), of which only rows ``[lo, hi)`` are active when the bounds are set (possibly traced: the active sample
    count of a masked run); ``weight`` is then the 0/1 mask over ``[start, stop)``."""

    start: int
    stop: int
    lo: int | Array | None = None
    hi: int | Array | None = None

    def take(self, array: Array) -> Array:
        return array[self.start:self.stop]

    @property
    def weight(self) -> Array | None:
        """0/1 weights over rows ``[start, stop)``; ``None`` when every row is active."""
        if self.lo is None and self.hi is None:
            return None
        return self.weight_at(jnp.arange(self.start, self.stop))

    def weight_at(self, idx: Array) -> Float[Array, " k"]:
        """0/1 weight of the samples with indices ``idx`` (any indices: those outside the role get 0)."""
        lo = self.start if self.lo is None else jnp.maximum(self.lo, self.start)
        hi = self.stop if self.hi is None else jnp.minimum(self.hi, self.stop)
        return ((idx >= lo) & (idx < hi)).astype(jnp.float32)


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
    n_act = jnp.asarray(n_active)
    n_val = jnp.maximum(1, jnp.round(val_fraction * n_act)).astype(jnp.int32)
    # validation rows never pass round(val_fraction * n) (+1 for float32 rounding): a static bound for the streams
    val = Role(0, min(n, max(1, round(val_fraction * n)) + 1), 0, n_val)
    if split_fraction is None:
        fit = Role(0, n, n_val, n_act)
        return SampleRoles(val, fit, fit)
    n1 = jnp.maximum(1, jnp.round(split_fraction * (n_act - n_val))).astype(jnp.int32)
    return SampleRoles(val, Role(0, n, n_val, n_val + n1), Role(0, n, n_val + n1, n_act))
