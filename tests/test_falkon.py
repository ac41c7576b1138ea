"""Falkon (reprjax.solvers.falkon): the same Nystrom solutions as the direct path, by preconditioned CG."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax.kernels import empirical as kernels
from reprjax.methods import kernel_ridge as baselines
from reprjax.network import NetworkConfig
from reprjax.problem import data, targets
from reprjax.solvers import falkon, nystrom


def _ntk(x1, x2):
    return kernels.ntk_infinite(x1, x2, bias_var=1.0)


def _predictions(path, d=6):
    """float64 predictions of every strength on fixed fresh inputs (coefficients themselves are ill-determined in
    the directions ``K_nM`` barely sees at small strengths; predictions are what the solvers must agree on)."""
    x_new = jax.random.normal(jax.random.key(11), (200, d))
    with jax.enable_x64(True):
        k = _ntk(x_new.astype(jnp.float64), path.centres.astype(jnp.float64))
        return np.asarray(k @ path.coef.T)


def _close(ours, theirs, rel):
    np.testing.assert_allclose(ours, theirs, atol=rel * np.abs(theirs).max())


def _problem(d=6, n=600, seed=0):
    target = targets.paper_target(jax.random.key(seed), d)
    x = data.sample_dataset(jax.random.key(seed + 1), target, n).x
    return x, target(x)


@settings(deadline=None, max_examples=4)
@given(seed=st.integers(0, 2**16), centres=st.sampled_from([40, 120]))
def test_falkon_reaches_the_direct_solution_in_float64(seed, centres):
    x, y = _problem(seed=seed % 7)
    lams = (1e-8, 1e-5, 1e-2)
    direct = nystrom.nystrom_ridge_path(_ntk, x, y, lams, centres, kernel_dtype="float64")
    fast = falkon.falkon_ridge_path(_ntk, x, y, lams, centres, kernel_dtype="float64", tol=1e-11, max_iter=500,
                                    block=128)
    np.testing.assert_allclose(fast.path.lambdas, direct.lambdas, rtol=1e-12)
    _close(_predictions(fast.path), _predictions(direct), 1e-6)
    assert np.all(np.asarray(fast.residual) <= 1e-11)


def test_falkon_stops_at_the_relative_residual_and_records_iterations():
    x, y = _problem(n=800)
    lams = (1e-9, 1e-6, 1e-3, 1.0)
    out = falkon.falkon_ridge_path(_ntk, x, y, lams, 200, tol=1e-6, max_iter=300)
    iters, res = np.asarray(out.iterations), np.asarray(out.residual)
    assert np.all(res <= 1e-6) and np.all(iters < 300)
    assert iters[-1] < iters[0]  # the largest strength is the best conditioned
    capped = falkon.falkon_ridge_path(_ntk, x, y, lams, 200, tol=1e-12, max_iter=2, warm_start=False)
    assert np.all(np.asarray(capped.iterations) <= 2) and np.asarray(capped.residual)[0] > 1e-6


def test_warm_starts_along_the_strength_path_save_iterations():
    x, y = _problem(n=800)
    lams = tuple(10.0 ** -k for k in range(10, -1, -1))
    warm = falkon.falkon_ridge_path(_ntk, x, y, lams, 200, tol=1e-7, warm_start=True)
    cold = falkon.falkon_ridge_path(_ntk, x, y, lams, 200, tol=1e-7, warm_start=False)
    assert np.asarray(warm.iterations).sum() < np.asarray(cold.iterations).sum()
    _close(_predictions(warm.path), _predictions(cold.path), 1e-4)


def test_joint_strengths_reach_the_direct_solutions_in_fewer_kernel_passes_than_the_path():
    x, y = _problem(n=800)
    lams = (1e-9, 1e-6, 1e-3, 1.0)
    direct = nystrom.nystrom_ridge_path(_ntk, x, y, lams, 200)
    path = falkon.falkon_ridge_path(_ntk, x, y, lams, 200, strategy="path")
    joint = falkon.falkon_ridge_path(_ntk, x, y, lams, 200, strategy="joint")
    assert np.all(np.asarray(joint.residual) <= falkon.TOL)
    # one pass over the kernel blocks per CG update: the joint solve makes max(iterations) passes, the path their sum
    assert np.asarray(joint.iterations).max() < np.asarray(path.iterations).sum()
    _close(_predictions(joint.path), _predictions(direct), 1e-4)


def test_cached_and_recomputed_kernel_blocks_give_the_same_solution():
    x, y = _problem(n=500)
    lams = (1e-7, 1e-3)
    cached = falkon.falkon_ridge_path(_ntk, x, y, lams, 100, block=96, cache_gib=1.0)
    fresh = falkon.falkon_ridge_path(_ntk, x, y, lams, 100, block=96, cache_gib=0.0)
    assert cached.cached and not fresh.cached
    _close(_predictions(cached.path), _predictions(fresh.path), 1e-4)  # both stop at the residual 1e-6


def test_a_masked_prefix_solves_the_unmasked_problem_on_the_active_rows():
    x, y = _problem(n=600)
    w = (jnp.arange(600) < 450).astype(jnp.float32)
    lams = (1e-6, 1e-2)
    masked = falkon.falkon_ridge_path(_ntk, x, y, lams, 80, sample_weight=w, tol=1e-9)
    plain = falkon.falkon_ridge_path(_ntk, x[:450], y[:450], lams, 80, tol=1e-9)
    _close(_predictions(masked.path), _predictions(plain.path), 1e-5)


def test_kernel_solver_falkon_matches_nystrom_end_to_end():
    target = targets.paper_target(jax.random.key(0), 6)
    common = dict(n=1500, n_test=2000, centres=300, lambdas=(1e-8, 1e-5, 1e-2),
                  network=NetworkConfig(init_bias_scale=1.0))
    direct = baselines.ntk_infinite_ridge(jax.random.key(1), target,
                                          baselines.KernelConfig(kernel_solver="nystrom", **common))
    fast = baselines.ntk_infinite_ridge(jax.random.key(1), target,
                                        baselines.KernelConfig(kernel_solver="falkon", **common))
    assert abs(float(fast.test_nmse) - float(direct.test_nmse)) < 1e-3
    assert float(fast.lam) == pytest.approx(float(direct.lam))


@pytest.mark.parametrize("bad", [dict(tol=0.0), dict(tol=2.0), dict(max_iter=0), dict(cache_gib=-1.0),
                                 dict(strategy="both")])
def test_invalid_solver_settings_are_rejected_by_name(bad):
    x, y = _problem(n=100)
    with pytest.raises(ValueError, match=next(iter(bad))):
        falkon.falkon_ridge_path(_ntk, x, y, (1e-3,), 20, **bad)


def test_cache_fits_counts_entries_of_the_kernel_dtype():
    assert falkon.cache_fits(2**20, 2**10, 4.0)  # exactly 4 GiB of float32
    assert not falkon.cache_fits(2**20, 2**10, 4.0, "float64")


def test_a_zero_strength_is_rejected_by_name():
    x, y = _problem(n=100)
    with pytest.raises(ValueError, match="lambdas"):
        falkon.falkon_ridge_path(_ntk, x, y, (0.0, 1e-3), 20)


def test_the_acceptance_benchmark_runs_only_when_named():
    from reprjax.bench import suite

    default = suite.default_selection(["--quick", "--"])
    assert "falkon_acceptance" not in default and "falkon" in default and "--quick" in default
    assert set(default[default.index("--only") + 1:]) == set(suite.BENCHMARKS) - set(suite.EXPLICIT_ONLY)
    named = ["--only", "falkon_acceptance", "--repeats", "1"]
    assert suite.default_selection(named) == named
    assert suite.default_selection(["--only=falkon"]) == ["--only=falkon"]
