"""Nystrom kernel ridge (reprjax.solvers.nystrom) and its use by the kernel baselines at large n."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax.methods import kernel_ridge as baselines
from reprjax.problem import data
from reprjax.kernels import empirical as kernels
from reprjax.solvers import nystrom
from reprjax.solvers import ridge
from reprjax.problem import targets
from reprjax.network import NetworkConfig


def _ntk(x1, x2):
    return kernels.ntk_infinite(x1, x2, bias_var=1.0)


def _problem(d=6, n=512, seed=0):
    target = targets.paper_target(jax.random.key(seed), d)
    x = data.sample_dataset(jax.random.key(seed + 1), target, n).x
    return target, x, target(x)


def test_nystrom_with_every_sample_as_centre_equals_exact_kernel_ridge():
    _, x, y = _problem()
    lams = (1e-4, 1e-2, 1.0)
    path = nystrom.nystrom_ridge_path(_ntk, x, y, lams, centres=x.shape[0], kernel_dtype="float64")
    exact = ridge.kernel_ridge_path(_ntk(x, None), y, lams, precision="float64")
    x_new = jax.random.normal(jax.random.key(5), (64, x.shape[1]))
    ours = np.asarray(nystrom.predict(_ntk, x_new, path))
    theirs = np.asarray(_ntk(x_new, x) @ exact.coef.T)
    np.testing.assert_allclose(path.lambdas, exact.lambdas, rtol=1e-5)
    np.testing.assert_allclose(ours, theirs, rtol=2e-3, atol=2e-3 * np.abs(theirs).max())
    chex.assert_shape(path.coef, (3, x.shape[0]))
    assert path.coef.dtype == jnp.float64


def test_normal_equations_accumulated_in_blocks_equal_the_whole_products():
    _, x, y = _problem(n=300)
    c = x[:40]
    w = (jnp.arange(300) < 250).astype(jnp.float32)
    with jax.enable_x64(True):
        h, b = nystrom.normal_equations(_ntk, x, y, c, w, block=64)
        k = _ntk(x, c).astype(jnp.float64) * w[:, None]
        np.testing.assert_allclose(h, k.T @ k, rtol=1e-6)
        np.testing.assert_allclose(b, k.T @ y.astype(jnp.float64), rtol=1e-6)
    chex.assert_shape((h, b), ((40, 40), (40,)))


@settings(deadline=None, max_examples=8)
@given(log_shift=st.floats(-6.0, 2.0), seed=st.integers(0, 2**16))
def test_solve_path_solves_the_regularised_normal_equations(log_shift, seed):
    """For every shift s: (H + s K_MM) alpha = b on the range of K_MM (here full rank)."""
    rng = np.random.default_rng(seed)
    m, n = 12, 40
    kx = rng.standard_normal((n, m))
    kmm = kx[:m] @ kx[:m].T + 0.5 * np.eye(m)
    h, b = kx.T @ kx, kx.T @ rng.standard_normal(n)
    shift = 10.0**log_shift
    with jax.enable_x64(True):
        coef = nystrom.solve_path(jnp.asarray(kmm), jnp.asarray(h), jnp.asarray(b), jnp.asarray([shift]), jitter=0.0)
        residual = (h + shift * kmm) @ np.asarray(coef[0]) - b
        eig = nystrom.solve_path(jnp.asarray(kmm), jnp.asarray(h), jnp.asarray(b), jnp.asarray([shift]), jitter=0.0,
                                 minimum_norm=True)
    assert np.linalg.norm(residual) <= 1e-8 * np.linalg.norm(b) * max(1.0, np.linalg.cond(h + shift * kmm) * 1e-6)
    np.testing.assert_allclose(eig, coef, rtol=1e-6, atol=1e-9 * np.abs(coef).max())


def test_float64_normal_equations_keep_directions_that_float32_loses():
    """The Nystrom normal equations square the condition number: a kernel direction 1e-4 below the top (within
    float32 resolution of the kernel values) has eigenvalue 1e-8 in H, under float32 resolution.  The solver (float64 H,
    float64 solve) still fits it; the same algebra in float32 does not."""
    n, p = 4096, 6
    scales = jnp.logspace(0, -2, p)  # kernel eigenvalues from 1 to 1e-4
    # data drawn and labelled in numpy (float64, rounded once): their float32 bits do not depend on how XLA compiles
    # a normal draw or a sum (jax-drawn data gave err64 3.5e-7 at XLA's default optimisation and 1.5e-6 at level 0,
    # the suite's, tests/conftest.py: the weakest direction amplifies the data's rounding); unit weight on every
    # direction
    rng = np.random.default_rng(0)
    x64, x_test64 = rng.standard_normal((n, p)), rng.standard_normal((512, p))
    x, x_test = jnp.asarray(x64, jnp.float32), jnp.asarray(x_test64, jnp.float32)
    y = jnp.asarray(np.asarray(x, np.float64).sum(1), jnp.float32)
    y_test = jnp.asarray(np.asarray(x_test, np.float64).sum(1), jnp.float32)

    def linear(x1, x2):
        return (x1 * scales**2) @ x2.T

    path = nystrom.nystrom_ridge_path(linear, x, y, (1e-12,), centres=64)
    with jax.enable_x64(True):
        ours = nystrom.predict(linear, x_test, path)[:, 0]
    err64 = float(jnp.mean((ours - y_test) ** 2) / jnp.mean(y_test**2))
    # the same normal equations formed and solved in float32
    c = x[:64]
    k = linear(x, c)
    coef32 = jnp.linalg.lstsq(k.T @ k, k.T @ y)[0]
    err32 = float(jnp.mean((linear(x_test, c) @ coef32 - y_test) ** 2) / jnp.mean(y_test**2))
    assert err64 < 1e-6
    assert err32 > 100 * err64


def test_masked_nystrom_run_matches_the_unmasked_run_of_the_same_size():
    target = targets.paper_target(jax.random.key(0), 6)
    base = baselines.KernelConfig(n=800, n_test=256, kernel_solver="nystrom", centres=150,
                                  network=NetworkConfig(init_bias_scale=1.0))
    small = baselines.ntk_infinite_ridge(jax.random.key(3), target, base.replace(n=400))
    masked = baselines.ntk_infinite_ridge(jax.random.key(3), target, base.replace(n_active=400))
    np.testing.assert_allclose(masked.test_nmse, small.test_nmse, rtol=1e-3)
    np.testing.assert_allclose(masked.val_mse, small.val_mse, rtol=1e-3)


def test_nystrom_kernel_ridge_learns_the_degree_two_part_and_vmaps_over_seeds():
    target = targets.paper_target(jax.random.key(0), 6)
    config = baselines.KernelConfig(n=3000, n_test=1024, kernel_solver="nystrom", centres=500,
                                    network=NetworkConfig(init_bias_scale=1.0))
    keys = jax.random.split(jax.random.key(1), 2)
    out = jax.jit(jax.vmap(baselines.ntk_infinite_ridge, in_axes=(0, None, None)))(keys, target, config)
    chex.assert_shape(out.test_nmse, (2,))
    # the degree-2 half of the paper target is learned (error well below the 0.5 left without it)
    assert np.all(np.asarray(out.test_nmse) < 0.45)
    assert not np.any(np.asarray(out.failed))


def test_auto_solver_switches_to_nystrom_past_the_exact_cap():
    assert not baselines.KernelConfig(n=1000, exact_n_max=800).uses_nystrom
    assert baselines.KernelConfig(n=1100, exact_n_max=800, centres=500).uses_nystrom


@pytest.mark.parametrize("centres", [0, -3, 5000, 2.5])
def test_bad_centre_counts_are_rejected_with_a_clear_error(centres):
    with pytest.raises(ValueError, match="centres"):
        baselines.KernelConfig(n=1000, kernel_solver="nystrom", centres=centres)
    _, x, y = _problem(n=100)
    with pytest.raises(ValueError, match="centres"):
        nystrom.nystrom_ridge_path(_ntk, x, y, (1e-3,), centres=centres)


def test_non_finite_inputs_are_rejected():
    _, x, y = _problem(n=100)
    with pytest.raises(ValueError, match="x must be finite"):
        nystrom.nystrom_ridge_path(_ntk, x.at[3, 1].set(jnp.nan), y, (1e-3,), centres=10)
    with pytest.raises(ValueError, match="y must be finite"):
        nystrom.nystrom_ridge_path(_ntk, x, y.at[0].set(jnp.inf), (1e-3,), centres=10)
    with pytest.raises(ValueError, match="kernel_dtype"):
        nystrom.nystrom_ridge_path(_ntk, x, y, (1e-3,), centres=10, kernel_dtype="float16")
