"""Test error of a predictor and how well a first layer has found ``span(U)``.

* Normalised test MSE ``E[(f - f*)^2] / E[f*^2]`` and mean absolute error ``E|f - f*|`` on fresh noise-free test
  samples (docs/setting.md: the guarantee is stated for the absolute error; we report both), computed in chunks so that
  memory stays bounded for any test size.  ``E[f*^2]`` is exact (from the coefficients) for isotropic inputs and
  for the normalised spiked target (``DataConfig.spike_target = "normalised"``: the whitened latent is ``N(0, I_r)``
  whatever the spike), and the test-set average for the raw spiked target, whose law changes with the spike.
* Alignment ``||W U^T||_F^2 / ||W||_F^2``: the fraction of the first layer's energy in ``span(U)`` (``r/d`` for a
  random ``W``, 1 when every row lies in ``span(U)``).
* Principal angles between the top-``r`` right singular space of ``W`` and ``span(U)``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.maths import lapack as _lapack
from reprjax.problem.data import DataConfig, sample_dataset
from reprjax.problem.targets import MultiIndexTarget


@struct.dataclass
class HeldOutErrors:
    """Errors of a predictor on fresh test samples."""

    nmse: Float[Array, ""]  # E[(f - f*)^2] / E[f*^2]
    mae: Float[Array, ""]  # E|f - f*|
    mse: Float[Array, ""]  # E[(f - f*)^2]
    target_second_moment: Float[Array, ""]  # E[f*^2] used for the normalisation


def held_out_errors(
    key: PRNGKeyArray,
    target: MultiIndexTarget,
    predict: Callable[[Float[Array, "n d"]], Float[Array, " n"]],
    n_test: int = 10_000,
    chunk: int = 2048,
    data_config: DataConfig = DataConfig(),
    spike_key: PRNGKeyArray | None = None,
) -> HeldOutErrors:
    """Errors of ``predict`` against the noise-free target on ``n_test`` fresh samples, drawn and scored in chunks.

    Chunk ``c`` is drawn from ``fold_in(key, c)``, so peak memory is one chunk's inputs and features whatever
    ``n_test`` is.  Pass the training run's ``spike_key`` so that a random spike direction is shared.
    """
    _validate.check_int("n_test", n_test, low=1)
    _validate.check_int("chunk", chunk, low=1)
    chunk = min(chunk, n_test)
    n_chunks = -(-n_test // chunk)
    spike_key = jax.random.fold_in(key, 2**20) if spike_key is None else spike_key

    def one(c):
        ds = sample_dataset(jax.random.fold_in(key, c), target, chunk, data_config, spike_key=spike_key)
        valid = (c * chunk + jnp.arange(chunk)) < n_test
        err = jnp.where(valid, predict(ds.x) - ds.f, 0.0)
        return jnp.stack([jnp.sum(err**2), jnp.sum(jnp.abs(err)), jnp.sum(jnp.where(valid, ds.f**2, 0.0))])

    sums = jax.lax.fori_loop(0, n_chunks, lambda c, acc: acc + one(c), jnp.zeros(3, jnp.float32))
    mse, mae, f2 = sums[0] / n_test, sums[1] / n_test, sums[2] / n_test
    exact = target.second_moment()
    if data_config.spike_target == "normalised":  # the target's law is the isotropic one
        second = exact
    else:
        second = jnp.where(jnp.asarray(data_config.spike) == 0.0, exact, f2)
    return HeldOutErrors(nmse=mse / second, mae=mae, mse=mse, target_second_moment=second)


def alignment(W: Float[Array, "m d"], U: Float[Array, "r d"]) -> Float[Array, ""]:
    """``||W U^T||_F^2 / ||W||_F^2``: the share of the first layer's energy inside ``span(U)``."""
    if W.shape[-1] != U.shape[-1]:
        raise ValueError(f"W has dimension {W.shape[-1]} but U has d = {U.shape[-1]}")
    return jnp.sum((W @ U.T) ** 2) / jnp.sum(W**2)


def principal_angles(W: Float[Array, "m d"], U: Float[Array, "r d"]) -> Float[Array, " r"]:
    """Principal angles (radians, increasing) between the top-``r`` right singular space of ``W`` and ``span(U)``."""
    if W.shape[-1] != U.shape[-1]:
        raise ValueError(f"W has dimension {W.shape[-1]} but U has d = {U.shape[-1]}")
    r = U.shape[0]
    _, _, vt = _lapack.svd(W)
    cosines = _lapack.singular_values(U @ vt[:r].T)
    return jnp.arccos(jnp.clip(cosines, -1.0, 1.0))
