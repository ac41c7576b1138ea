"""The run contract (reprjax.contract): what every method shares, checked once here."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reprjax import algorithm, baselines, contract, multistep, network
from reprjax.metrics import HeldOutErrors
from reprjax.second_layer import HeadFit


def test_every_method_module_uses_the_one_contract():
    for module in (algorithm, baselines, multistep):
        assert module.Metrics is contract.Metrics
    assert algorithm.Predictor is contract.Predictor and multistep.Predictor is contract.Predictor


def test_label_moments_are_the_weighted_mean_and_first_moment():
    x = jax.random.normal(jax.random.key(0), (50, 4))
    y = jax.random.normal(jax.random.key(1), (50,))
    w = (jnp.arange(50) < 30).astype(jnp.float32)
    alpha, beta = contract.label_moments(x, y, w)
    chex.assert_shape(beta, (4,))
    np.testing.assert_allclose(float(alpha), float(np.mean(np.asarray(y)[:30])), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(beta), np.asarray(y)[:30] @ np.asarray(x)[:30] / 30, rtol=1e-5, atol=1e-6)
    a_all, b_all = contract.label_moments(x, y)
    np.testing.assert_allclose(float(a_all), float(np.mean(np.asarray(y))), rtol=1e-5)


def test_predictor_adds_the_preprocessing_terms_to_the_network():
    params = network.init_symmetric(jax.random.key(2), 6, network.NetworkConfig(width=8))
    params = params.replace(a=jnp.linspace(-1.0, 2.0, 8))  # not the symmetric a: the network is not zero
    x = jax.random.normal(jax.random.key(3), (5, 6))
    beta = jnp.arange(6, dtype=jnp.float32)
    f = contract.Predictor(params=params, alpha=jnp.float32(0.5), beta=beta)(x)
    np.testing.assert_allclose(np.asarray(f), np.asarray(network.forward(params, x) + 0.5 + x @ beta), rtol=1e-6)


def _head(val):
    val = jnp.asarray(val, jnp.float32)
    return HeadFit(a=jnp.zeros((2,)), lambdas=jnp.asarray([1e-3, 1e-2, 1e-1][: len(val)]), val_mse=val,
                   index=jnp.argmin(val))


def test_summarise_run_takes_the_chosen_strength_and_flags_any_non_finite_outcome():
    ok = contract.summarise_run(HeldOutErrors(nmse=jnp.float32(0.2), mae=jnp.float32(0.3), mse=jnp.float32(0.2),
                                              target_second_moment=jnp.float32(1.0)),
                                _head([0.5, 0.1, 0.4]), jnp.float32(0.9))
    assert float(ok.lam) == pytest.approx(1e-2) and float(ok.val_mse) == pytest.approx(0.1) and not bool(ok.failed)
    bad = contract.summarise_run(HeldOutErrors(nmse=jnp.float32(jnp.nan), mae=jnp.float32(0.3), mse=jnp.float32(jnp.nan),
                                               target_second_moment=jnp.float32(1.0)),
                                 _head([0.5, 0.1, 0.4]), jnp.float32(0.9))
    assert bool(bad.failed)
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), ok, bad)
    assert contract.failed_runs_report(stacked) == ["run 1 diverged (NaN/inf outcome) with config None"]
    with pytest.raises(ValueError, match="run 1 diverged"):
        contract.mean_over_runs(stacked)
    assert contract.mean_over_runs(ok)["test_nmse"] == pytest.approx(0.2)
