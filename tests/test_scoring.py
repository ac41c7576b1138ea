"""Test-error estimation: the stratified design, unbiased errors with calibrated standard errors, validation SEs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax.maths.hermite import multi_index_hermite
from reprjax.maths.stratified import PER_STRATUM, StratifiedDesign, paired_sums, stratified_design, stratified_normal
from reprjax.methods.scoring import held_out_errors, mean_squared_error_with_se
from reprjax.problem import targets
from reprjax.problem.data import DataConfig

D = 8


@settings(max_examples=20, deadline=None)
@given(budget=st.integers(2, 20_000), r=st.integers(1, 5))
def test_design_is_the_largest_that_fits_the_budget(budget, r):
    design = stratified_design(budget, r)
    assert design.axes == min(r, 3)
    assert design.size <= budget or design.per_axis == 1
    assert PER_STRATUM * (design.per_axis + 1) ** design.axes > budget


@settings(max_examples=4, deadline=None)
@given(per_axis=st.integers(1, 9), spread=st.sampled_from([1.0, 2.0, 3.0]), seed=st.integers(0, 2**16))
def test_points_lie_in_their_cells_and_the_strata_probabilities_sum_to_one(per_axis, spread, seed):
    design = StratifiedDesign(r=3, axes=2, per_axis=per_axis, spread=spread)
    z, p = stratified_normal(jax.random.key(seed), design, jnp.arange(design.size))
    np.testing.assert_allclose(float(jnp.sum(p)) / PER_STRATUM, 1.0, rtol=1e-5)
    lo, hi = design.lower_tail_cells()
    j = np.arange(per_axis)
    mirror = np.minimum(j, per_axis - 1 - j)
    left = np.where(2 * j < per_axis, lo[mirror], 1.0 - hi[mirror])
    right = np.where(2 * j < per_axis, hi[mirror], 1.0 - lo[mirror])
    np.testing.assert_allclose(right[:-1], left[1:], atol=1e-12)  # the cells tile [0, 1]
    cdf = 0.5 * np.vectorize(math.erfc)(-np.asarray(z[:, :2], np.float64) / math.sqrt(2.0))
    stratum = np.arange(design.size) // PER_STRATUM
    for axis, cell in enumerate([stratum // per_axis, stratum % per_axis]):
        assert np.all(cdf[:, axis] >= left[cell] - 1e-6) and np.all(cdf[:, axis] <= right[cell] + 1e-6)


@pytest.mark.parametrize("spread", [1.0, 2.0])
def test_stratified_mean_is_unbiased_and_its_variance_calibrated_on_a_heavy_tailed_integrand(spread):
    # F(z) = h_4(z_1)^2 + h_2(z_2) z_3: E[F] = 1 (h_4 normalised), heavy-tailed (E[h_4^4] = 639)
    design = stratified_design(512, 3, spread)

    def estimate(key):
        z, p = stratified_normal(key, design, jnp.arange(design.size))
        f = multi_index_hermite(z, ((4, 0, 0),))[:, 0] ** 2 + multi_index_hermite(z, ((0, 2, 1),))[:, 0]
        mean, cov = paired_sums(f[:, None], p, jnp.ones_like(p))
        return mean[0], cov[0, 0]

    means, variances = jax.vmap(estimate)(jax.random.split(jax.random.key(3), 400))
    sd = float(jnp.std(means, ddof=1))
    assert abs(float(jnp.mean(means)) - 1.0) <= 4.0 * sd / math.sqrt(400)
    assert 0.75 <= math.sqrt(float(jnp.mean(variances))) / sd <= 1.3  # unbiased variance: RMS SE matches the SD


def _known_error_case(d: int = D):
    """The paper target, a predictor holding its degree-2 part plus ``0.3 h_2(<v, x>)`` with ``v`` orthogonal to
    ``span(U)``: the unlearned degree-4 part (heavy-tailed squared error) and a part outside ``span(U)`` give
    ``nmse = 0.5 + 0.09`` exactly."""
    t = targets.paper_target(jax.random.key(0), d)
    v = jax.random.normal(jax.random.key(1), (d,))
    v = v - (v @ t.U.T) @ t.U
    v = v / jnp.linalg.norm(v)

    def predict(x):
        quadratic = multi_index_hermite(x @ t.U.T, ((2, 0), (0, 2))) @ jnp.array([0.5, 0.5])
        return quadratic + 0.3 * ((x @ v) ** 2 - 1.0) / math.sqrt(2.0)

    return t, predict, 0.59


def test_test_error_is_unbiased_with_a_calibrated_standard_error_on_a_known_error():
    t, predict, exact = _known_error_case()
    keys = jax.random.split(jax.random.key(11), 24)
    errs = jax.vmap(lambda k: held_out_errors(k, t, predict, 2048, 1024))(keys)
    nmse, se = np.asarray(errs.nmse), np.asarray(errs.nmse_se)
    sd = nmse.std(ddof=1)
    assert abs(nmse.mean() - exact) <= 4.0 * sd / math.sqrt(len(keys)) + 1e-3
    assert 0.6 <= math.sqrt(np.mean(se**2)) / sd <= 1.6
    np.testing.assert_allclose(np.asarray(errs.mse), nmse * np.asarray(errs.target_second_moment), rtol=1e-5)


def test_stratified_estimate_is_several_times_tighter_than_plain_monte_carlo():
    t, predict, _ = _known_error_case()
    keys = jax.random.split(jax.random.key(12), 24)
    sds = {}
    for estimator, control in (("plain", False), ("stratified", True)):
        errs = jax.vmap(lambda k: held_out_errors(k, t, predict, 2048, 1024, estimator=estimator,
                                                  control=control))(keys)
        sds[estimator] = float(np.std(np.asarray(errs.nmse), ddof=1))
    assert sds["stratified"] * 4.0 < sds["plain"], sds


def test_single_estimate_on_the_known_error_reaches_two_percent_at_the_default_budget():
    t, predict, exact = _known_error_case(16)
    errs = held_out_errors(jax.random.key(5), t, predict, 8192)
    assert float(errs.nmse_se) <= 0.02 * exact
    assert abs(float(errs.nmse) - exact) <= 4.0 * float(errs.nmse_se)


def test_raw_spiked_target_normalises_by_its_own_estimate_and_a_zero_predictor_scores_one():
    t = targets.paper_target(jax.random.key(2), D)
    config = DataConfig(spike=3.0, spike_target="raw")
    errs = held_out_errors(jax.random.key(3), t, lambda x: jnp.zeros(x.shape[0]), 2048, data_config=config)
    np.testing.assert_allclose(float(errs.nmse), 1.0, rtol=1e-5)
    assert float(errs.nmse_se) <= 1e-4  # the ratio of a quantity to itself has no error
    assert float(errs.target_second_moment) > 1.5  # the raw target's degree-4 energy grows with the spike


def test_validation_standard_error_is_the_sample_standard_deviation_over_root_n():
    rng = np.random.default_rng(0)
    pred, y = rng.normal(size=(300, 3)), rng.normal(size=300)
    weight = (np.arange(300) < 250).astype(np.float32)
    mse, se = mean_squared_error_with_se(jnp.asarray(pred), jnp.asarray(y), jnp.asarray(weight))
    sq = (pred[:250] - y[:250, None]) ** 2
    np.testing.assert_allclose(np.asarray(mse), sq.mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(se), sq.std(0, ddof=1) / np.sqrt(250), rtol=1e-4)


@pytest.mark.parametrize("name, hyper", [("algorithm1", {}), ("ntk_infinite", {}), ("multistep", {"steps": 5})])
def test_every_kind_of_method_row_carries_finite_standard_errors(name, hyper):
    from reprjax.methods.registry import METHODS

    method = METHODS[name]
    t = targets.paper_target(jax.random.key(0), D)
    row = method.run(jax.random.key(1), t, method.make_config(D, 256, 32, {"n_test": 512, **hyper}))
    for field in ("test_nmse_se", "test_mae_se", "val_mse_se"):
        value = float(getattr(row, field))
        assert np.isfinite(value) and value > 0.0, (field, value)
    assert float(row.test_nmse_se) < float(row.test_nmse)
