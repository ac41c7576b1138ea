"""The run contract (reprjax.methods.contract): what every method shares, checked once here."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reprjax import network
from reprjax.methods import algorithm1 as algorithm
from reprjax.methods import kernel_ridge as baselines
from reprjax.methods import contract
from reprjax.methods import both_layers as multistep
from reprjax.methods.scoring import HeldOutErrors
from reprjax.solvers.head import HeadFit


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
    nan = jnp.float32(jnp.nan)
    bad = contract.summarise_run(HeldOutErrors(nmse=nan, mae=jnp.float32(0.3), mse=nan,
                                               target_second_moment=jnp.float32(1.0)),
                                 _head([0.5, 0.1, 0.4]), jnp.float32(0.9))
    assert bool(bad.failed)
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), ok, bad)
    assert contract.failed_runs_report(stacked) == ["run 1 diverged (NaN/inf outcome) with config None"]
    with pytest.raises(ValueError, match="run 1 diverged"):
        contract.mean_over_runs(stacked)
    assert contract.mean_over_runs(ok)["test_nmse"] == pytest.approx(0.2)


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (2, 0, 3, 1)])
def test_strength_position_and_edge_drop_follow_the_strengths_not_their_order(order):
    lambdas = jnp.asarray([1e-6, 1e-4, 1e-2, 1.0])[jnp.asarray(order)]
    val = jnp.asarray([0.30, 0.31, 0.50, 0.90])[jnp.asarray(order)]  # falling toward the smallest strength

    def at(strength):
        return int(jnp.argmax(lambdas == strength))

    assert float(contract.strength_position(lambdas, at(1e-6))) == 0.0
    assert float(contract.strength_position(lambdas, at(1.0))) == 1.0
    assert float(contract.strength_position(lambdas, at(1e-4))) == pytest.approx(1 / 3)
    # at the smallest edge: the drop over the last step is (0.31 - 0.30) / 0.30; inside the grid: 0
    assert float(contract.edge_validation_drop(lambdas, val, at(1e-6))) == pytest.approx(0.01 / 0.30, rel=1e-5)
    assert float(contract.edge_validation_drop(lambdas, val, at(1e-2))) == 0.0
    drop_at_top = float(contract.edge_validation_drop(lambdas, val, at(1.0)))
    assert drop_at_top == pytest.approx((0.50 - 0.90) / 0.90, rel=1e-5)
    # a zero validation error at the edge (a target the grid fits exactly) gives a finite drop, not a NaN row
    flat = contract.edge_validation_drop(lambdas, jnp.zeros(4), at(1e-6))
    falling = contract.edge_validation_drop(lambdas, jnp.zeros(4).at[at(1e-4)].set(0.1), at(1e-6))
    assert float(flat) == 0.0 and bool(jnp.isfinite(falling)) and float(falling) > 1e3
    one = jnp.asarray([1e-3])
    assert float(contract.strength_position(one, 0)) == 0.5
    assert float(contract.edge_validation_drop(one, jnp.asarray([0.2]), 0)) == 0.0


def test_summarised_run_reports_where_its_strength_sits():
    errors = HeldOutErrors(nmse=jnp.float32(0.3), mae=jnp.float32(0.4), mse=jnp.float32(0.3),
                            target_second_moment=jnp.float32(1.0))
    head = HeadFit(a=jnp.zeros(3), lambdas=jnp.asarray([1e-3, 1e-2, 1e-1]), val_mse=jnp.asarray([0.2, 0.25, 0.5]),
                   index=jnp.asarray(0))
    row = contract.summarise_run(errors, head, jnp.float32(1.0))
    assert float(row.lam_position) == 0.0 and float(row.edge_val_drop) == pytest.approx(0.25, rel=1e-5)
    inside = contract.summarise_run(errors, head.replace(index=jnp.asarray(1)), jnp.float32(1.0))
    assert float(inside.lam_position) == 0.5 and float(inside.edge_val_drop) == 0.0


def test_kernel_runs_search_their_solvers_default_strength_grid():
    exact = baselines.KernelConfig(n=1000)
    nys = baselines.KernelConfig(n=1000, kernel_solver="nystrom", centres=100)
    assert exact.strengths == baselines.KERNEL_LAMBDAS
    assert nys.strengths == baselines.NYSTROM_LAMBDAS and min(nys.strengths) == 1e-10
    assert baselines.KernelConfig(n=1000, lambdas=(1e-3,), kernel_solver="nystrom", centres=100).strengths == (1e-3,)
    with pytest.raises(ValueError, match="lambdas"):
        baselines.KernelConfig(n=1000, lambdas=(-1.0,))
    # Nystrom's centres: every fitting sample up to exact_n_max (exact kernel ridge in float64), the rule beyond
    assert baselines.KernelConfig(n=1000, kernel_solver="nystrom").centres_for(16) == 800
    assert baselines.KernelConfig(n=20_000, kernel_solver="nystrom").centres_for(8) == 4096
    assert baselines.KernelConfig(n=20_000).centres_for(16) == baselines.auto_centres(16, 16_000) == 9690
