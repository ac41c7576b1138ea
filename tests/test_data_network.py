"""Data sampling and the two-layer network: covariance, determinism, symmetric init, shapes, bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reprjax import network
from reprjax.problem import data
from reprjax.problem import targets

D = 8


def test_isotropic_inputs_have_identity_covariance():
    x = np.asarray(data.sample_inputs(jax.random.key(0), 100_000, D), np.float64)
    np.testing.assert_allclose(x.T @ x / len(x), np.eye(D), atol=0.03)


def test_spiked_inputs_have_spiked_covariance():
    mu = jnp.zeros(D).at[3].set(2.0)  # not unit: normalised inside
    x = np.asarray(data.sample_inputs(jax.random.key(1), 200_000, D, spike=4.0, spike_vector=mu), np.float64)
    expected = np.eye(D)
    expected[3, 3] += 4.0
    np.testing.assert_allclose(x.T @ x / len(x), expected, atol=0.06)


def test_labels_are_target_plus_noise_of_requested_size():
    t = targets.paper_target(jax.random.key(0), D)
    ds = data.sample_dataset(jax.random.key(2), t, 50_000, data.DataConfig(noise=0.5))
    np.testing.assert_allclose(np.asarray(ds.f), np.asarray(t(ds.x)), rtol=1e-6)
    assert abs(float(jnp.std(ds.y - ds.f)) - 0.5) < 0.01


def test_spike_direction_target_aligns_with_first_row_of_U():
    t = targets.paper_target(jax.random.key(0), D)
    ds = data.sample_dataset(jax.random.key(3), t, 100_000, data.DataConfig(spike=3.0))
    u = np.asarray(t.U[0], np.float64)
    proj = np.asarray(ds.x, np.float64) @ u
    assert abs(proj.var() - 4.0) < 0.1


def test_splits_are_deterministic_and_independent_of_other_sizes():
    t = targets.paper_target(jax.random.key(0), D)
    a = data.make_splits(jax.random.key(5), t, 64, 16, 100)
    b = data.make_splits(jax.random.key(5), t, 64, 16, 1000)
    np.testing.assert_array_equal(np.asarray(a.train.x), np.asarray(b.train.x))
    np.testing.assert_array_equal(np.asarray(a.val.y), np.asarray(b.val.y))
    assert not np.allclose(np.asarray(a.train.x[:16]), np.asarray(a.val.x))
    chex.assert_shape([a.train.x, a.val.x, a.test.x], [(64, D), (16, D), (100, D)])


@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 30.0))
def test_symmetric_init_is_exactly_zero_for_every_input(seed, scale):
    k_p, k_x = jax.random.split(jax.random.key(seed))
    for cfg in (network.NetworkConfig(width=64), network.NetworkConfig(width=64, init="sphere",
                                                                       output_scale="sqrt", init_bias_scale=1.0),
                network.NetworkConfig(width=64, activation="poly", output_scale="mean")):
        params = network.init_symmetric(k_p, D, cfg)
        x = scale * jax.random.normal(k_x, (32, D))
        feats = np.asarray(network.features(params, x, cfg.activation))
        a = np.asarray(params.a)
        # the two halves of the network are bitwise mirror images, so f(x) = 0 in exact arithmetic ...
        np.testing.assert_array_equal(feats[:, :32], feats[:, 32:])
        np.testing.assert_array_equal(a[:32], -a[32:])
        # ... and the float32 matmul returns 0 up to the rounding of its sum
        out = np.asarray(network.forward(params, x, cfg.activation))
        bound = 64 * np.finfo(np.float32).eps * (np.abs(feats) @ np.abs(a))
        assert np.all(np.abs(out) <= bound)


def test_init_distributions_and_scales():
    p = network.init_symmetric(jax.random.key(0), 64, network.NetworkConfig(width=4096))
    half = 2048
    np.testing.assert_array_equal(np.asarray(p.W[:half]), np.asarray(p.W[half:]))
    np.testing.assert_array_equal(np.asarray(p.a[:half]), -np.asarray(p.a[half:]))
    assert np.all(np.abs(np.asarray(p.a)) == 1.0) and np.all(np.asarray(p.b) == 0.0)
    row_sq = np.asarray(jnp.sum(p.W**2, axis=1))
    assert abs(row_sq.mean() - 1.0) < 0.02  # E||w||^2 = 1 for w ~ N(0, I/d)
    s = network.init_symmetric(jax.random.key(0), 64, network.NetworkConfig(width=8, init="sphere",
                                                                             output_scale="mean"))
    np.testing.assert_allclose(np.asarray(jnp.linalg.norm(s.W, axis=1)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.abs(np.asarray(s.a)), 1 / 8)


def test_independent_init_has_m_distinct_directions_with_the_same_row_law():
    """The random-features layer: m independent rows (full rank m <= d), where the symmetric init has m/2."""
    ind = network.init_independent(jax.random.key(0), 64, network.NetworkConfig(width=48))
    sym = network.init_symmetric(jax.random.key(0), 64, network.NetworkConfig(width=48))
    assert np.linalg.matrix_rank(np.asarray(ind.W)) == 48 and np.linalg.matrix_rank(np.asarray(sym.W)) == 24
    big = network.init_independent(jax.random.key(1), 64, network.NetworkConfig(width=4096, init_bias_scale=0.5))
    assert abs(float(jnp.mean(jnp.sum(big.W**2, axis=1))) - 1.0) < 0.02  # E||w||^2 = 1 for w ~ N(0, I/d)
    assert abs(float(jnp.std(big.b)) - 0.5) < 0.03
    assert float(jnp.sum(big.a)) == 0.0 and np.all(np.abs(np.asarray(big.a)) == 1.0)
    sphere = network.init_independent(jax.random.key(2), 16, network.NetworkConfig(width=8, init="sphere"))
    np.testing.assert_allclose(np.asarray(jnp.linalg.norm(sphere.W, axis=1)), 1.0, rtol=1e-5)


def test_activation_derivatives_match_jax_grad():
    z = jnp.linspace(-3, 3, 41) + 0.013  # avoid the ReLU kink at 0
    for name in network.ACTIVATIONS:
        got = network.activation_derivative(name)(z)
        ref = jax.vmap(jax.grad(network.activation(name)))(z)
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-5, atol=1e-6)


class NetworkShapesTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_forward_shapes_and_dtypes(self):
        cfg = network.NetworkConfig(width=16)
        params = network.init_symmetric(jax.random.key(0), D, cfg)
        chex.assert_shape([params.a, params.W, params.b], [(16,), (16, D), (16,)])
        chex.assert_type([params.a, params.W, params.b], jnp.float32)
        x = jax.random.normal(jax.random.key(1), (5, D))
        out = self.variant(network.forward, static_argnums=2)(params, x, "relu")
        feats = self.variant(network.features, static_argnums=2)(params, x, "gelu")
        chex.assert_shape(out, (5,))
        chex.assert_shape(feats, (5, 16))
        chex.assert_type([out, feats], jnp.float32)
        chex.assert_tree_all_finite((out, feats))

    @chex.variants(with_jit=True, without_jit=True)
    def test_target_and_data_shapes_and_dtypes(self):
        t = targets.paper_target(jax.random.key(0), D)
        ds = self.variant(lambda k: data.sample_dataset(k, t, 7, data.DataConfig(noise=0.1, spike=1.0)))(
            jax.random.key(1))
        chex.assert_shape([ds.x, ds.y, ds.f], [(7, D), (7,), (7,)])
        chex.assert_type([ds.x, ds.y, ds.f], jnp.float32)
        grad = self.variant(t.gradient)(ds.x)
        chex.assert_shape(grad, (7, D))


# ------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("width", [3, 7, 0, -2, 1])
def test_odd_or_non_positive_width_raises(width):
    with pytest.raises(ValueError, match="width"):
        network.NetworkConfig(width=width)


@pytest.mark.parametrize("field,value", [("activation", "tanh"), ("init", "uniform"), ("output_scale", "half"),
                                         ("init_bias_scale", -1.0)])
def test_bad_network_options_raise(field, value):
    with pytest.raises(ValueError, match=field):
        network.NetworkConfig(width=4, **{field: value})


@pytest.mark.parametrize("field", ["noise", "spike"])
def test_negative_noise_or_spike_raises(field):
    with pytest.raises(ValueError, match=field):
        data.DataConfig(**{field: -0.1})


def test_mismatched_dimension_between_target_and_data_raises():
    t = targets.paper_target(jax.random.key(0), D)
    with pytest.raises(ValueError, match="d = 9 does not match"):
        data.sample_dataset(jax.random.key(0), t, 10, d=9)
    with pytest.raises(ValueError, match="x has dimension"):
        t(jnp.ones((3, D + 1)))
    params = network.init_symmetric(jax.random.key(0), D, network.NetworkConfig(width=4))
    with pytest.raises(ValueError, match="x has dimension"):
        network.forward(params, jnp.ones((3, D + 1)))
    with pytest.raises(ValueError, match="spike_vector"):
        data.sample_inputs(jax.random.key(0), 4, D, spike=1.0, spike_vector=jnp.ones(D + 1))


def test_non_positive_sample_count_raises():
    with pytest.raises(ValueError, match="n must be in"):
        data.sample_inputs(jax.random.key(0), 0, D)
    t = targets.paper_target(jax.random.key(0), D)
    with pytest.raises(ValueError, match="n_val"):
        data.make_splits(jax.random.key(0), t, 10, 0, 10)
