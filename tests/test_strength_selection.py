"""Choosing the ridge strength: paired validation differences and the capped one-standard-error rule
(reprjax.solvers.ridge.select_lambda, docs/measurements.md "Choosing the strength")."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax import network
from reprjax.methods import algorithm1 as algorithm
from reprjax.problem import targets
from reprjax.solvers import head as head_mod
from reprjax.solvers import ridge


def test_paired_differences_and_their_standard_error_match_numpy():
    rng = np.random.default_rng(0)
    sq = rng.standard_exponential((500, 6)).astype(np.float32) * np.linspace(1, 2, 6, dtype=np.float32)
    w = (rng.random(500) < 0.8).astype(np.float32)
    pairs = ridge.paired_square_differences(jnp.asarray(sq), jnp.asarray(w))
    chex.assert_shape(pairs, (6, 6))
    want = np.einsum("i,ilk->lk", w, (sq[:, :, None] - sq[:, None, :]) ** 2)
    np.testing.assert_allclose(pairs, want, rtol=1e-5)
    n = w.sum()
    val = (w[:, None] * sq).sum(0) / n
    se = ridge.difference_se(jnp.asarray(val), pairs, jnp.asarray(n), 2)
    kept = sq[w > 0]
    diffs = kept - kept[:, [2]]
    np.testing.assert_allclose(se, diffs.std(0, ddof=1) / np.sqrt(len(kept)), rtol=1e-4, atol=1e-7)
    assert float(se[2]) == 0.0


def test_without_standard_errors_the_minimum_wins_and_nan_never_does():
    val = jnp.asarray([0.3, jnp.nan, 0.1, 0.2])
    assert int(ridge.select_lambda(val)) == 2
    assert int(ridge.select_lambda(jnp.full((3,), jnp.nan))) == 0


def test_differences_below_float32_rounding_are_ties_even_where_the_paired_error_is_zero():
    lam = jnp.asarray([0.0, 1e-8, 1e-6, 1e-4])
    val = jnp.asarray([0.1, 0.1 * (1 + 3e-6), 0.1 * (1 + 6e-6), 0.2], jnp.float32)
    assert int(ridge.select_lambda(val, lam, jnp.zeros((4,)))) == 2  # rounding noise does not cut a flat stretch


def test_the_rule_moves_up_a_flat_stretch_and_stops_at_the_first_significant_rise():
    lam = jnp.asarray([0.0, 1e-8, 1e-6, 1e-4, 1e-2, 1.0])
    val = jnp.asarray([0.1000, 0.1002, 0.1004, 0.1300, 0.1005, 0.5])
    se = jnp.full((6,), 0.001)
    # 1e-4 rises by 0.03 > one SE: the walk stops below it even though 1e-2 would be within tolerance again
    assert int(ridge.select_lambda(val, lam, se)) == 2
    # the 1% cap binds where the paired standard error is large
    assert int(ridge.select_lambda(val, lam, jnp.full((6,), 0.5))) == 2
    assert int(ridge.select_lambda(jnp.asarray([0.1, 0.1009, 0.1011, 0.2, 0.2, 0.2]), lam, jnp.full((6,), 0.5))) == 1
    # the order of the grid does not matter, only the strengths
    perm = np.asarray([3, 0, 5, 2, 1, 4])
    assert int(perm[int(ridge.select_lambda(val[perm], lam[perm], se[perm]))]) == 2


@settings(deadline=None, max_examples=60)
@given(st.lists(st.floats(0.01, 10.0), min_size=2, max_size=12), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_the_chosen_strength_is_never_weaker_than_the_minimum_nor_worse_than_its_tolerance(vals, se, seed):
    order = np.random.default_rng(seed).permutation(len(vals))
    lam = jnp.asarray(np.geomspace(1e-8, 1.0, len(vals))[order])
    val = jnp.asarray(vals, jnp.float32)
    diff_se = jnp.full(val.shape, se, jnp.float32)
    chosen, best = int(ridge.select_lambda(val, lam, diff_se)), int(jnp.argmin(val))
    assert float(lam[chosen]) >= float(lam[best])
    tolerance = max(min(se, 0.01 * float(val[best])), ridge.SELECTION_TIE * float(val[best]))
    assert float(val[chosen] - val[best]) <= tolerance + 1e-7
    # every strength between the minimum and the choice is within the tolerance too (the walk is contiguous)
    between = (lam >= lam[best]) & (lam <= lam[chosen])
    assert bool(jnp.all(jnp.where(between, val - val[best] <= tolerance + 1e-7, True)))


def test_the_head_records_paired_standard_errors_and_obeys_the_rule():
    target = targets.paper_target(jax.random.key(0), 12)
    config = algorithm.Algorithm1Config(n=2048, network=network.NetworkConfig(width=128), n_test=512)
    head = algorithm.train_one_step(jax.random.key(1), target, config).head
    chex.assert_shape(head.val_diff_se, head.val_mse.shape)
    best, chosen = int(jnp.argmin(head.val_mse)), int(head.index)
    assert float(head.val_diff_se[best]) == 0.0
    assert float(head.lambdas[chosen]) >= float(head.lambdas[best])
    gap = float(head.val_mse[chosen] - head.val_mse[best])
    tolerance = max(min(float(head.val_diff_se[chosen]), 0.01 * float(head.val_mse[best])),
                    ridge.SELECTION_TIE * float(head.val_mse[best]))
    assert gap <= tolerance + 1e-7


def test_strength_zero_is_no_candidate_with_more_fitting_samples_than_features():
    """Hoerl & Kennard (1970): above the interpolation threshold some positive strength beats least squares."""
    rng = np.random.default_rng(1)
    lam = jnp.asarray([0.0, 1e-8, 1e-6, 1e-4])
    val = jnp.asarray([0.10, 0.30, 0.25, 0.40], jnp.float32)
    sq = jnp.asarray(rng.standard_exponential((300, 4)), jnp.float32)
    pairs = ridge.paired_square_differences(sq)
    coef = jnp.zeros((4, 8))
    over = head_mod.choose_strength(coef, lam, val, val * 0.1, pairs, jnp.asarray(300.0), jnp.asarray(20.0))
    under = head_mod.choose_strength(coef, lam, val, val * 0.1, pairs, jnp.asarray(300.0), jnp.asarray(6.0))
    assert int(over.index) == 2 and int(under.index) == 0
    np.testing.assert_array_equal(over.val_mse, val)  # the recorded path is the measured one
    assert int(head_mod.choose_strength(coef, lam, val, val * 0.1, pairs, jnp.asarray(300.0)).index) == 0


def test_a_head_above_the_interpolation_threshold_never_chooses_least_squares():
    target = targets.paper_target(jax.random.key(0), 16)
    config = algorithm.Algorithm1Config(n=2048, network=network.NetworkConfig(width=128), n_test=512)
    keys = jax.random.split(jax.random.key(5), 4)
    heads = jax.vmap(lambda k: algorithm.train_one_step(k, target, config).head)(keys)
    assert bool(jnp.all(heads.lambdas[jnp.arange(4), heads.index] > 0))
