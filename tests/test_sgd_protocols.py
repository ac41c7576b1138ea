"""The SGD protocols (reprjax.methods.sgd_protocols / sgd_runs) against plain numpy: each protocol's update on a small
case, the smoothed loss's reduction to one coordinate, the reduced simulation's law against the full one, the
Bartlett rows and the chi-square draws."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import hermite_e
from scipy import integrate, stats

from reprjax.methods import sgd_protocols as P
from reprjax.methods import sgd_runs
from reprjax.problem import targets

SETTINGS = settings(deadline=None, max_examples=3)


def _he(k):  # normalised h_k and its derivative, numpy
    c = np.zeros(k + 1)
    c[k] = 1.0 / math.sqrt(math.factorial(k))
    return (lambda z: hermite_e.hermeval(z, c)), (lambda z: hermite_e.hermeval(z, hermite_e.hermeder(c)))


def _jax_link(k):
    t = targets.single_index(jax.random.key(0), 4, k)
    return lambda a: t.g(a[..., None])


def _case(seed, b, d, k):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    x = rng.standard_normal((b, d))
    y = _he(k)[0](x[:, 0])
    return w, x, y


def _np_step(w, g, eta):
    tangent = g - (g @ w) * w
    new = w - eta * tangent
    return new / np.linalg.norm(new)


def _np_plain(w, x, y, k, eta, passes):
    for _ in range(passes):
        c = -y * _he(k)[1](x @ w)
        w = _np_step(w, c @ x / len(y), eta)
    return w


@SETTINGS
@given(seed=st.integers(0, 10**6), b=st.integers(1, 6), d=st.integers(5, 12), k=st.integers(1, 4),
       passes=st.integers(2, 4))
def test_online_and_reuse_updates_match_numpy(seed, b, d, k, passes):
    w, x, y = _case(seed, b, d, k)
    eta = 0.3 / d
    for protocol, p in (("online", 1), ("reuse", passes)):
        ours = P.batch_update(protocol, jnp.asarray(w, jnp.float32), jnp.asarray(x, jnp.float32),
                              jnp.asarray(y, jnp.float32), _jax_link(k), eta, passes)
        np.testing.assert_allclose(np.asarray(ours), _np_plain(w, x, y, k, eta, p), rtol=2e-4, atol=2e-5)


def _np_smoothed_loss(w, x, y, lam, k, d):
    """``-y E_t[sigma((a + lam rho t) / sqrt(1 + lam^2))]`` by adaptive quadrature in float64 (w normalised)."""
    w = w / np.linalg.norm(w)
    a = x @ w
    rho = math.sqrt(x @ x - a * a)
    sigma = _he(k)[0]
    dens = lambda t: (1 - t * t) ** ((d - 4) / 2)  # noqa: E731
    norm = integrate.quad(dens, -1, 1, epsabs=1e-13)[0]
    f = lambda t: dens(t) * sigma((a + lam * rho * t) / math.sqrt(1 + lam * lam))  # noqa: E731
    return -y * integrate.quad(f, -1, 1, epsabs=1e-13)[0] / norm


@pytest.mark.parametrize("k,d", [(3, 7), (4, 10), (2, 16)])
def test_smoothed_gradient_is_the_spherical_gradient_of_the_smoothed_loss(k, d):
    w, x, y = _case(k + d, 1, d, k)
    lam = d**0.25
    eps = 1e-5
    num = np.array([(_np_smoothed_loss(w + eps * e, x[0], y[0], lam, k, d)
                     - _np_smoothed_loss(w - eps * e, x[0], y[0], lam, k, d)) / (2 * eps) for e in np.eye(d)])
    num -= (num @ w) * w
    c = P.smoothed_coefficients(jnp.asarray(w, jnp.float32), jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32),
                                _jax_link(k), jnp.float32(lam), d)
    px = x[0] - (x[0] @ w) * w
    np.testing.assert_allclose(float(c[0]) * px, num, rtol=2e-3, atol=2e-4 * np.abs(num).max())
    eta = 0.1
    ours = P.batch_update("smoothed", jnp.asarray(w, jnp.float32), jnp.asarray(x, jnp.float32),
                          jnp.asarray(y, jnp.float32), _jax_link(k), eta, lam=lam)
    np.testing.assert_allclose(np.asarray(ours), _np_step(w, num, eta), rtol=2e-3, atol=2e-4)


def test_smoothed_loss_is_the_average_over_the_tangent_sphere():
    """The reduction to ``t``: Monte Carlo over ``z`` uniform on the unit sphere of ``w^perp`` agrees within 4 SE."""
    d, k, lam = 9, 3, 1.7
    w, x, y = _case(3, 1, d, k)
    rng = np.random.default_rng(1)
    z = rng.standard_normal((400_000, d))
    z -= np.outer(z @ w, w)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    pts = (w + lam * z) / math.sqrt(1 + lam * lam)
    vals = -y[0] * _he(k)[0](pts @ x[0])
    exact = _np_smoothed_loss(w, x[0], y[0], lam, k, d)
    assert abs(vals.mean() - exact) < 4 * vals.std() / math.sqrt(len(vals))


def _full_m(protocol, key, d, b, batches, k, eta, passes, lam):
    link = _jax_link(k)
    k0, k1 = jax.random.split(key)
    w = jax.random.normal(k0, (d,))
    w = w / jnp.linalg.norm(w)
    for t in range(batches):
        x = jax.random.normal(jax.random.fold_in(k1, t), (b, d))
        w = P.batch_update(protocol, w, x, link(x[:, 0]), link, eta, passes, lam, d)
    return w[0]


def _reduced_m(protocol, key, d, b, batches, k, eta, passes, lam):
    link = _jax_link(k)
    k0, k1 = jax.random.split(key)
    m = P.initial_overlap(k0, d)
    for t in range(batches):
        m = P.reduced_update(protocol, jax.random.fold_in(k1, t), m, b, d, lambda z: link(z[..., 0]), link, eta,
                             passes, lam)
    return m


@pytest.mark.parametrize("protocol,k,b", [("online", 2, 4), ("smoothed", 3, 3), ("reuse", 3, 3)])
def test_reduced_simulation_has_the_law_of_the_full_one(protocol, k, b):
    """Two-sample KS test of ``m`` after 3 batches (large steps, so the law moves away from the start)."""
    d, seeds = 12, 2000
    args = (d, b, 3, k, 2.0 * b / d, 2, 1.5)
    keys = jax.random.split(jax.random.key(7), seeds)
    full = np.asarray(jax.jit(jax.vmap(lambda kk: _full_m(protocol, kk, *args)))(keys))
    keys = jax.random.split(jax.random.key(8), seeds)
    red = np.asarray(jax.jit(jax.vmap(lambda kk: _reduced_m(protocol, kk, *args)))(keys))
    start = np.asarray(jax.vmap(lambda kk: P.initial_overlap(jax.random.split(kk)[0], d))(keys))
    assert stats.ks_2samp(full, red).pvalue > 1e-3
    assert stats.ks_2samp(start, red).pvalue < 1e-6  # the test has power: the steps moved the law


def test_bartlett_rows_have_the_gram_law_of_gaussian_vectors():
    b, dim, draws = 4, 6, 20_000
    rows = jax.vmap(lambda kk: P.bartlett_rows(kk, b, dim))(jax.random.split(jax.random.key(0), draws))
    gram = np.asarray(jnp.einsum("sik,sjk->sij", rows, rows))
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((draws, b, dim))
    ref_gram = np.einsum("sik,sjk->sij", ref, ref)
    for i, j in ((0, 0), (3, 3), (0, 1), (2, 3)):
        assert stats.ks_2samp(gram[:, i, j], ref_gram[:, i, j]).pvalue > 1e-3, (i, j)


@pytest.mark.parametrize("df", [1.0, 5.0, 200.0])
def test_chi_square_draws_have_the_chi_square_law(df):
    x = np.asarray(P.chi_square(jax.random.key(int(df)), jnp.full((100_000,), df)))
    assert stats.kstest(x, stats.chi2(df).cdf).pvalue > 1e-3


def test_theory_exponents_per_protocol():
    assert P.theory_samples("online", 3, 1, 100)[1:] == (2.0, False)
    assert P.theory_samples("online", 4, 2, 100)[1:] == (3.0, False)
    assert P.theory_samples("smoothed", 4, 2, 100)[1:] == (2.0, False)
    assert P.theory_samples("smoothed", 3, 1, 100)[1:] == (1.5, False)
    assert P.theory_samples("reuse", 3, 1, 100)[1:] == (1.0, False)
    assert P.theory_samples("reuse", 4, 2, 100)[1:] == (1.0, True)
    assert sgd_runs.target_exponents(targets.single_index(jax.random.key(0), 8, 3)) == (3, 1)


def test_a_run_stops_at_recovery_and_reports_it():
    target = targets.single_index(jax.random.key(0), 16, 2)
    cfg = sgd_runs.SGDConfig(protocol="online", simulation="full", budget=64.0, steps=16, records=12)
    out = sgd_runs.simulate(jax.random.key(1), target, cfg)
    assert float(out.recovered) == 1.0 and float(out.final_overlap) >= 0.5
    assert float(out.recovery_n) <= float(out.n_budget)
    path = np.asarray(out.path_overlap)
    seen = path[path >= 0]
    assert len(seen) and np.all(np.asarray(out.path_n)[path >= 0] <= float(out.recovery_n))


@pytest.mark.parametrize("field,value", [("level", 1.0), ("level", 0.0), ("eta_scale", -1.0),
                                         ("passes", 1), ("protocol", "adam"), ("budget", math.inf)])
def test_config_refuses_values_out_of_range(field, value):
    with pytest.raises(ValueError, match=field):
        sgd_runs.SGDConfig(**{field: value})


def _np_relu_reuse(w, x, y, eta, passes):
    for _ in range(passes):
        c = -y * (x @ w > 0)
        w = _np_step(w, c @ x / len(y), eta)
    return w


@SETTINGS
@given(seed=st.integers(0, 10**6), d=st.integers(5, 12), passes=st.integers(2, 4))
def test_relu_student_reuse_update_matches_numpy(seed, d, passes):
    """The batch-reuse update with the papers' ReLU student on a batch of ``b = d`` (``n_b ~ d``)."""
    w, x, y = _case(seed, d, d, 3)
    eta = 0.2  # eta_scale 0.2 at b = d: eta = 0.2 b / d
    ours = P.batch_update("reuse", jnp.asarray(w, jnp.float32), jnp.asarray(x, jnp.float32),
                          jnp.asarray(y, jnp.float32), P.relu, eta, passes)
    np.testing.assert_allclose(np.asarray(ours), _np_relu_reuse(w, x, y, eta, passes), rtol=2e-4, atol=2e-5)


def test_relu_student_reusing_batches_of_d_recovers_h3_within_64_d():
    """Dandi et al. 2024 / Arnaboldi et al. 2024: two-layer reuse learns ``h_3`` (generative exponent 1) from
    ``O(d)`` samples; 4 passes on fresh batches of ``d`` at ``eta_scale = 0.2``, 8 seeds at ``d = 128``."""
    target = targets.single_index(jax.random.key(0), 128, 3)
    cfg = sgd_runs.SGDConfig(protocol="reuse", simulation="full", student="relu", batch_over_d=1.0, passes=4,
                             eta_scale=0.2, level=0.3, budget=64.0, records=8)
    out = jax.jit(jax.vmap(lambda k: sgd_runs.simulate(k, target, cfg)))(jax.random.split(jax.random.key(3), 8))
    assert float(out.batch[0]) == 128 and float(out.n_budget[0]) == 64 * 128
    assert float(out.recovered.mean()) >= 0.75, np.asarray(out.final_overlap)


def test_study_sends_each_target_and_protocol_to_its_dims_and_budget():
    """``dims_for`` replaces ``dims`` for its pair only; the smoothed protocol takes its own budget and batch cap;
    a malformed entry is refused naming it."""
    from reprjax.studies import sgd_exponents as S

    config = S.Config(dims=(64, 128), targets=("he3", "he4"), protocols=("online", "smoothed"), seeds=1,
                      dims_for={"he4/online": [32, 16], "tanh/reuse": [8]}, smoothed_budget=48.0,
                      smoothed_max_batches=7)
    runs = S.grid(config).runs()
    dims = {(r["target"], r["method"]): set() for r in runs}
    for r in runs:
        dims[(r["target"], r["method"])].add(r["d"])
    he3, he4 = S.spec("he3").label(), S.spec("he4").label()
    assert dims == {(he3, "sgd_online"): {64, 128}, (he3, "sgd_smoothed"): {64, 128},
                    (he4, "sgd_online"): {16, 32}, (he4, "sgd_smoothed"): {64, 128}}
    assert {(r["method"], r["budget"], r["max_batches"]) for r in runs} == {
        ("sgd_online", config.budget, config.max_batches), ("sgd_smoothed", 48.0, 7)}
    for bad, match in [({"he9/online": [64]}, "he9/online"), ({"he4/online": [4]}, "he4/online"),
                       ({"he4/online": [64, 64]}, "distinct"), ([64], "table")]:
        with pytest.raises(ValueError, match=match):
            S.Config(dims_for=bad)
    with pytest.raises(ValueError, match="smoothed_budget"):
        S.Config(smoothed_budget=0.0)


def test_smoothed_step_is_lambda_to_the_k_times_the_online_one_up_to_k_2_and_the_theorem_above():
    """``s = d^(-k/2) lambda^(2k-2)`` (``k >= 2``), ``lambda / d`` (``k = 1``): ``lambda^k`` times the online step
    for ``k <= 2`` (the smoothed drift is divided by ``lambda^k``, so the count stays the online one) and
    ``d^(-1/2)`` for ``h_3`` at ``lambda = d^(1/4)`` (docs/sgd_exponents.md, "The smoothed step")."""
    from reprjax.studies import sgd_exponents as S

    for d in (64, 4096):
        lam = d**0.25
        assert math.isclose(P.step_scale("smoothed", 1, d), lam * P.step_scale("online", 1, d))
        assert math.isclose(P.step_scale("smoothed", 2, d), lam**2 * P.step_scale("online", 2, d))
        assert math.isclose(P.step_scale("smoothed", 3, d), d**-0.5)
        assert math.isclose(P.step_scale("smoothed", 4, d, lam_scale=2.0), d**-2 * (2 * lam) ** 6)
    assert S.theory("tanh", "smoothed")[0] == 1.0 and S.theory("he2", "smoothed")[0] == 1.0
    assert "log" in S.theory("he2", "smoothed")[1]
    assert S.theory("he3", "smoothed")[0] == 1.5 and S.theory("he4", "smoothed")[0] == 2.0
    assert S.theory("he2", "online")[0] == 1.0 and S.theory("he4", "online")[0] == 3.0


def test_the_default_preset_is_the_study_default():
    from pathlib import Path

    from reprjax.studies import base
    from reprjax.studies import sgd_exponents as S

    path = Path(__file__).resolve().parents[1] / "examples" / "sgd_exponents.toml"
    assert base.config_from_dict(S.Config, base.load_toml(path)) == S.Config()
