"""Test error of a predictor, with its standard error, and how well a first layer has found ``span(U)``.

* Normalised test MSE ``E[(f - f*)^2] / E[f*^2]`` and mean absolute error ``E|f - f*|`` on fresh noise-free test
  samples (docs/setting.md: the guarantee is stated for the absolute error; we report both), each with its standard
  error, computed in chunks so that memory stays bounded for any test size.  The target depends on the latent ``z``
  alone, so the test inputs are drawn around a stratified design over ``z`` (:mod:`reprjax.maths.stratified`,
  :mod:`reprjax.problem.latent`) and ``f*^2``, whose mean is exact, is a control variate: the estimate stays
  unbiased and its standard error falls 25-30 fold against plain Monte Carlo on the paper's target
  (docs/test_error_estimation.md).  ``E[f*^2]`` is exact (from the coefficients) for isotropic inputs and for the
  normalised spiked target (``DataConfig.spike_target = "normalised"``: the whitened latent is ``N(0, I_r)`` whatever
  the spike), and the design's estimate for the raw spiked target, whose law changes with the spike.
* :func:`mean_squared_error_with_se`: the plain Monte Carlo validation error that chooses a ridge strength, with its
  standard error.
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
from reprjax.maths.stratified import StratifiedDesign, paired_sums, stratified_design, stratified_normal
from reprjax.problem.data import DataConfig
from reprjax.problem.latent import inputs_with_latent
from reprjax.problem.targets import MultiIndexTarget


#: Choices of the test-error estimator (module docstring).
ESTIMATORS = ("stratified", "plain")
#: Spread of the strata over the latent (:class:`reprjax.maths.stratified.StratifiedDesign`): 2 gives the tails,
#: where the squared error of an unlearned degree-4 part lives, four times the points of proportional strata
#: (docs/test_error_estimation.md: 25-30 times smaller standard deviations than plain Monte Carlo at d = 16).
TEST_SPREAD = 2.0


@struct.dataclass
class HeldOutErrors:
    """Errors of a predictor on fresh test samples, with the standard errors of the estimates."""

    nmse: Float[Array, ""]  # E[(f - f*)^2] / E[f*^2]
    mae: Float[Array, ""]  # E|f - f*|
    mse: Float[Array, ""]  # E[(f - f*)^2]
    target_second_moment: Float[Array, ""]  # E[f*^2] used for the normalisation
    nmse_se: Float[Array, ""] = None
    mae_se: Float[Array, ""] = None
    mse_se: Float[Array, ""] = None


def _exact_second_moment(data_config: DataConfig) -> bool:
    """Whether ``E[f*^2]`` is the target's own (isotropic inputs, or a spike with the normalised target)."""
    if data_config.spike_target == "normalised":
        return True
    return _validate.is_concrete(data_config.spike) and float(data_config.spike) == 0.0


def held_out_errors(
    key: PRNGKeyArray,
    target: MultiIndexTarget,
    predict: Callable[[Float[Array, "n d"]], Float[Array, " n"]],
    n_test: int = 10_000,
    chunk: int = 2048,
    data_config: DataConfig = DataConfig(),
    spike_key: PRNGKeyArray | None = None,
    estimator: str = "stratified",
    control: bool = True,
    spread: float = TEST_SPREAD,
) -> HeldOutErrors:
    """Errors of ``predict`` against the noise-free target from at most ``n_test`` evaluations, with standard errors.

    The test inputs are drawn around a design over the latent ``z`` (:func:`reprjax.problem.latent.inputs_with_latent`):
    ``estimator="stratified"`` stratifies ``z`` (:func:`reprjax.maths.stratified.stratified_design`, two points per
    stratum, ``2 K^min(r, 3) <= n_test`` points), ``"plain"`` draws it i.i.d. (``n_test`` rounded down to even
    points, paired only to share the code).  Both estimates are unbiased and carry an unbiased variance.  With
    ``control`` and an exact ``E[f*^2]`` (isotropic inputs or the normalised spiked target) the squared error and the
    absolute error are corrected by the control variate ``f*^2 - E[f*^2]`` with the variance-minimising coefficient
    (estimated from the same strata: a bias of order ``1 / n``).  For the raw spiked target ``E[f*^2]`` is the
    design's estimate and the normalised error's standard error is the delta method's.  Measured variance
    reductions: docs/test_error_estimation.md.

    Points ``[c chunk, (c + 1) chunk)`` are drawn from ``fold_in(key, c)``, so peak memory is one chunk's inputs and
    features whatever ``n_test`` is.  Pass the training run's ``spike_key`` so that a random spike direction is
    shared.
    """
    _validate.check_int("n_test", n_test, low=2)
    _validate.check_int("chunk", chunk, low=2)
    _validate.check_choice("estimator", estimator, ESTIMATORS)
    if estimator == "stratified":
        design = stratified_design(n_test, target.r, spread)
    else:
        design = StratifiedDesign(r=target.r, axes=1, per_axis=1)  # one stratum: plain Monte Carlo in pairs
    size = design.size if estimator == "stratified" else n_test - n_test % 2
    chunk = min(chunk - chunk % 2, size)
    n_chunks = -(-size // chunk)
    spike_key = jax.random.fold_in(key, 2**20) if spike_key is None else spike_key
    plain_p = 1.0 / (size // 2)

    def one(c):
        k_z, k_x = jax.random.split(jax.random.fold_in(key, c))
        index = c * chunk + jnp.arange(chunk)
        valid = (index < size).astype(jnp.float32)
        z, p = stratified_normal(k_z, design, index)
        if estimator == "plain":
            p = jnp.full_like(p, plain_p)
        ds = inputs_with_latent(k_x, target, z, data_config, spike_key=spike_key)
        err = jnp.where(valid > 0, predict(ds.x) - ds.f, 0.0)
        values = jnp.stack([err**2, jnp.abs(err), jnp.where(valid > 0, ds.f**2, 0.0)], axis=1)
        return paired_sums(values, p, valid)

    zeros = (jnp.zeros(3, jnp.float32), jnp.zeros((3, 3), jnp.float32))
    mean, cov = jax.lax.fori_loop(0, n_chunks, lambda c, acc: jax.tree.map(jnp.add, acc, one(c)), zeros)
    exact = _exact_second_moment(data_config)
    if exact:
        second = target.second_moment()
        if control:  # control variate f*^2 - E[f*^2] on the squared and the absolute error
            var_c = cov[2, 2]
            beta = jnp.where(var_c > 0.0, cov[:2, 2] / jnp.where(var_c > 0.0, var_c, 1.0), 0.0)
            est = mean[:2] - beta * (mean[2] - second)
            var = jnp.diagonal(cov)[:2] - beta * cov[:2, 2]
        else:
            est, var = mean[:2], jnp.diagonal(cov)[:2]
        mse, mae = est[0], est[1]
        mse_se, mae_se = jnp.sqrt(jnp.maximum(var, 0.0))
        nmse, nmse_se = mse / second, mse_se / second
    else:
        second = mean[2]
        mse, mae = mean[0], mean[1]
        mse_se, mae_se = jnp.sqrt(jnp.maximum(jnp.diagonal(cov)[:2], 0.0))
        nmse = mse / second
        grad = jnp.stack([1.0 / second, -mse / second**2])  # delta method for the ratio of two means
        nmse_se = jnp.sqrt(jnp.maximum(grad @ cov[jnp.ix_(jnp.array([0, 2]), jnp.array([0, 2]))] @ grad, 0.0))
    return HeldOutErrors(nmse=nmse, mae=mae, mse=mse, target_second_moment=second, nmse_se=nmse_se, mae_se=mae_se,
                         mse_se=mse_se)


def mean_squared_error_with_se(
    pred: Float[Array, "n L"], y: Float[Array, " n"], weight: Float[Array, " n"] | None = None
) -> tuple[Float[Array, " L"], Float[Array, " L"]]:
    """Plain Monte Carlo mean of ``(pred - y)^2`` per column (weighted) and its standard error, the error of the
    validation estimate that chooses a ridge strength: ``sqrt(sample variance / n)``."""
    w = jnp.ones(y.shape, jnp.float32) if weight is None else weight
    return weighted_mean_se(w[:, None] * (pred - y[:, None]) ** 2, w[:, None] * (pred - y[:, None]) ** 4, jnp.sum(w))


def weighted_mean_se(
    sum_terms: Float[Array, "n ..."], sum_squares: Float[Array, "n ..."], n_eff: Float[Array, ""]
) -> tuple[Float[Array, "..."], Float[Array, "..."]]:
    """Mean and standard error from per-sample terms ``w t`` and ``w t^2`` (``w`` 0/1 weights, ``n_eff = sum w``)."""
    mean = jnp.sum(sum_terms, axis=0) / n_eff
    var = jnp.maximum(jnp.sum(sum_squares, axis=0) / n_eff - mean**2, 0.0) * n_eff / jnp.maximum(n_eff - 1.0, 1.0)
    return mean, jnp.sqrt(var / n_eff)


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
