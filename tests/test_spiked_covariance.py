"""The spiked-covariance target (Ba et al. 2023): normalised (whitened latent, the target's law fixed) against raw.

``spike_target = "normalised"`` evaluates ``g(z)`` with ``z = (U Sigma U^T)^{-1/2} U x ~ N(0, I_r)``; a zero spike is
bitwise the isotropic problem; bad values raise naming the field.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax.problem import data
from reprjax.methods import scoring as metrics
from reprjax.problem import targets
from reprjax.studies import spiked_covariance

D = 8
THETA = 4.0
TOL = 0.05  # on the entries of the empirical latent covariance (200k samples: standard error ~0.005)


def _latents(direction: str, spike_target: str, n: int = 200_000):
    """Labels and the latent ``U x'`` they were computed from (``x'`` = whitened inputs or ``x``)."""
    t = targets.paper_target(jax.random.key(0), D)
    cfg = data.DataConfig(spike=THETA, spike_direction=direction, spike_target=spike_target)
    key = jax.random.key(1)
    ds = data.sample_dataset(key, t, n, cfg)
    mu = data.spike_vector(jax.random.fold_in(key, 3), t, cfg)
    x = data.target_inputs(ds.x, t.U, THETA, mu) if spike_target == "normalised" else ds.x
    return t, ds, x, np.asarray(x, np.float64) @ np.asarray(t.U, np.float64).T


@pytest.mark.parametrize("direction", data.SPIKE_DIRECTIONS)
def test_normalised_latent_has_identity_covariance_and_raw_does_not(direction):
    t, ds, x, z = _latents(direction, "normalised")
    np.testing.assert_allclose(np.asarray(ds.f), np.asarray(t(x)), rtol=1e-6, atol=1e-6)  # the labels' latent
    np.testing.assert_allclose(z.T @ z / len(z), np.eye(t.r), atol=TOL)
    assert abs(float(jnp.mean(ds.f**2)) - float(t.second_moment())) < 0.1  # the isotropic E[f*^2] = 1
    t, ds, x, z = _latents(direction, "raw")
    np.testing.assert_array_equal(np.asarray(ds.f), np.asarray(t(ds.x)))
    assert np.max(np.abs(z.T @ z / len(z) - np.eye(t.r))) > 10 * TOL  # the tolerance cannot pass for raw


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), r=st.integers(1, 4), theta=st.floats(0.0, 1e3), in_span=st.booleans())
def test_whitening_inverts_the_latent_covariance(seed, r, theta, in_span):
    """``U x' = A U x`` with ``A (U Sigma U^T) A = I_r`` for any spike direction, strength and rank."""
    k_u, k_mu = jax.random.split(jax.random.key(seed))
    U = targets.random_orthonormal(k_u, r, D)
    mu = U[0] + 0.1 * U[-1] if in_span else jax.random.normal(k_mu, (D,))
    M = np.asarray(data.target_inputs(jnp.eye(D), U, theta, mu), np.float64)  # row i: e_i'
    U64, m64 = np.asarray(U, np.float64), np.asarray(mu, np.float64) / np.linalg.norm(np.asarray(mu, np.float64))
    sigma = np.eye(D) + theta * np.outer(m64, m64)
    latent = U64 @ M.T  # z = latent @ x
    np.testing.assert_allclose(latent @ sigma @ latent.T, np.eye(r), atol=1e-5 * (1 + theta) ** 0.5)
    # z depends on x through U x only: latent = A U
    np.testing.assert_allclose(latent @ (np.eye(D) - U64.T @ U64), 0.0, atol=1e-5)


def test_first_row_spike_is_ba_et_al_target():
    """Spike on ``u = U[0]`` of a single-index target: ``f*(x) = h_k(<x, u> / sqrt(1 + theta))`` (Ba et al. 2023)."""
    t = targets.single_index(jax.random.key(4), D, 3)
    ds = data.sample_dataset(jax.random.key(5), t, 4096, data.DataConfig(spike=THETA))
    u = t.U[0] / jnp.linalg.norm(t.U[0])
    want = t.g((ds.x @ u / np.sqrt(1.0 + THETA))[:, None])
    np.testing.assert_allclose(np.asarray(ds.f), np.asarray(want), rtol=1e-5, atol=1e-5)
    raw = data.sample_dataset(jax.random.key(5), t, 4096, data.DataConfig(spike=THETA, spike_target="raw"))
    np.testing.assert_array_equal(np.asarray(raw.x), np.asarray(ds.x))
    np.testing.assert_allclose(np.asarray(raw.f), np.asarray(t.g((ds.x @ u)[:, None])), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("direction", data.SPIKE_DIRECTIONS)
def test_zero_spike_gives_bitwise_the_isotropic_labels(direction):
    t = targets.paper_target(jax.random.key(0), D)
    key = jax.random.key(6)
    iso = data.sample_dataset(key, t, 1000, data.DataConfig(noise=0.1))
    for spike_target in data.SPIKE_TARGETS:
        cfg = data.DataConfig(noise=0.1, spike=0.0, spike_direction=direction, spike_target=spike_target)
        ds = data.sample_dataset(key, t, 1000, cfg)
        for a, b in ((ds.x, iso.x), (ds.f, iso.f), (ds.y, iso.y)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # a traced zero spike (several spikes in one program) is the identity too: normalised == raw bit for bit

    def labels(spike_target):
        cfg = data.DataConfig(spike_direction=direction, spike_target=spike_target)
        return jax.jit(lambda s: data.sample_dataset(key, t, 1000, cfg.replace(spike=s)).f)(jnp.float32(0.0))

    np.testing.assert_array_equal(np.asarray(labels("normalised")), np.asarray(labels("raw")))


def test_held_out_errors_normalise_by_the_exact_moment_for_the_normalised_target():
    t = targets.paper_target(jax.random.key(0), D)
    zero = lambda x: jnp.zeros(x.shape[0])  # noqa: E731 - nmse of the zero predictor is E[f*^2] / normaliser
    norm = metrics.held_out_errors(jax.random.key(7), t, zero, 20_000, data_config=data.DataConfig(spike=THETA))
    assert float(norm.target_second_moment) == float(t.second_moment())
    assert abs(float(norm.nmse) - 1.0) < 0.1
    raw = metrics.held_out_errors(jax.random.key(7), t, zero, 20_000,
                                  data_config=data.DataConfig(spike=THETA, spike_target="raw"))
    assert float(raw.target_second_moment) > 50.0  # the raw target's degree-4 part grows with the spike
    assert abs(float(raw.nmse) - 1.0) < 1e-5


def test_bad_spike_target_raises_naming_the_field():
    with pytest.raises(ValueError, match="spike_target"):
        data.DataConfig(spike_target="whitened")
    with pytest.raises(ValueError, match="spike_target"):
        spiked_covariance.Config(spike_target="whitened")


def test_study_uses_the_normalised_target_by_default():
    assert spiked_covariance.Config().spike_target == "normalised" == data.DataConfig().spike_target
    assert "spike_target" not in dict(spiked_covariance.grid(spiked_covariance.Config()).hyper)
    grid = spiked_covariance.grid(spiked_covariance.Config(spike_target="raw"))
    assert dict(grid.hyper)["spike_target"] == ("raw",)


@pytest.mark.parametrize("method", spiked_covariance.Config().methods)
def test_every_study_method_builds_its_data_config_with_the_spike_target(method):
    """The registry routes ``spike_target`` into each method's DataConfig (not dropped, not a TypeError)."""
    from reprjax.methods.registry import METHODS
    config = METHODS[method].make_config(8, 64, 2, {"spike_target": "raw", "spike": 4.0})
    assert config.data.spike_target == "raw" and config.data.spike == 4.0
