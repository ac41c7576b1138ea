"""The committee protocol (reprjax.methods.sgd_committee) against plain numpy: its online update on a small case, the
subspace overlap, the per-direction link it reads from a target, and a run that recovers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import hermite_e

from reprjax.methods import sgd_committee as C
from reprjax.problem import targets


def _h(k):
    c = np.zeros(k + 1)
    c[k] = 1.0 / math.sqrt(math.factorial(k))
    return (lambda z: hermite_e.hermeval(z, c)), (lambda z: hermite_e.hermeval(z, hermite_e.hermeder(c)))


def _np_link(degrees, coeffs):
    fs = [(_h(k), c) for k, c in zip(degrees, coeffs)]
    return (lambda z: sum(c * f(z) for (f, _), c in fs)), (lambda z: sum(c * g(z) for (_, g), c in fs))


def _np_update(w, x, y, sigma, dsigma, eta):
    r = w.shape[0]
    a = x @ w.T
    resid = sigma(a).sum(axis=1) / math.sqrt(r) - y
    out = np.empty_like(w)
    for j in range(r):
        g = (resid * dsigma(a[:, j])) @ x / (len(y) * math.sqrt(r))
        g = g - (g @ w[j]) * w[j]
        new = w[j] - eta * g
        out[j] = new / np.linalg.norm(new)
    return out


@settings(deadline=None, max_examples=4)
@given(seed=st.integers(0, 10**6), b=st.integers(1, 6), d=st.integers(6, 12))
def test_committee_update_matches_numpy(seed, b, d):
    target = targets.paper_target(jax.random.key(seed), d, r=2, p=4)
    degrees, coeffs = C.separable_link(target)
    rng = np.random.default_rng(seed)
    w = np.linalg.qr(rng.standard_normal((d, 2)))[0].T
    x = rng.standard_normal((b, d))
    y = np.asarray(target(jnp.asarray(x, jnp.float32)), np.float64)
    eta = 0.3
    ours = C.committee_update(jnp.asarray(w, jnp.float32), jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32),
                              C._link(degrees, coeffs), eta)
    np.testing.assert_allclose(np.asarray(ours), _np_update(w, x, y, *_np_link(degrees, coeffs), eta),
                               rtol=3e-4, atol=3e-5)


def test_separable_link_of_the_paper_target_is_h2_plus_h4_over_sqrt2():
    degrees, coeffs = C.separable_link(targets.paper_target(jax.random.key(0), 8, r=2, p=4))
    assert degrees == (2, 4)
    np.testing.assert_allclose(np.asarray(coeffs), [1 / math.sqrt(2)] * 2, rtol=1e-6)
    assert C.committee_exponent(targets.paper_target(jax.random.key(0), 8, r=2, p=4)) == 2
    with pytest.raises(ValueError, match="per-direction"):
        C.separable_link(targets.staircase(jax.random.key(0), 8, 3))


def test_subspace_overlap_is_the_smallest_singular_value_and_sees_a_collapse():
    u = np.eye(2, 6)
    assert float(C.subspace_overlap(jnp.asarray(u), jnp.asarray(u))) == pytest.approx(1.0)
    both_on_u1 = np.stack([u[0], u[0]])
    assert float(C.subspace_overlap(jnp.asarray(both_on_u1), jnp.asarray(u))) == pytest.approx(0.0, abs=1e-6)
    w = np.array([[0.6, 0.0, 0.8, 0, 0, 0], [0.0, 1.0, 0.0, 0, 0, 0]])
    np.testing.assert_allclose(float(C.subspace_overlap(jnp.asarray(w), jnp.asarray(u))),
                               np.linalg.svd(w @ u.T, compute_uv=False).min(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(C.principal_cosines(jnp.asarray(w), jnp.asarray(u))), [1.0, 0.6], rtol=1e-5)


def test_committee_runs_recover_the_paper_target_and_report_it():
    """At ``d = 16`` 8 of 8 seeds reached 0.5 within ``100 d log d`` samples when this was written (the committee's
    symmetric plateau makes the spread wide: docs/sgd_exponents.md); the test asks 6 of 8 within ``512 d log d``."""
    target = targets.paper_target(jax.random.key(0), 16, r=2, p=4)
    cfg = C.CommitteeConfig(budget=512.0, steps=64, records=12)
    out = jax.jit(jax.vmap(lambda k: C.simulate(k, target, cfg)))(jax.random.split(jax.random.key(1), 8))
    ok = np.asarray(out.recovered) > 0
    assert ok.sum() >= 6
    assert np.all(np.asarray(out.final_overlap)[ok] >= 0.5)
    assert np.all(np.asarray(out.recovery_n) <= np.asarray(out.n_budget))
    cos = np.asarray(out.final_cosines)
    assert cos.shape == (8, 2) and np.all((cos >= 0) & (cos <= 1 + 1e-5))
    nmse, se = np.asarray(out.test_nmse), np.asarray(out.test_nmse_se)
    assert np.all(np.isfinite(nmse)) and np.all(se > 0)


@pytest.mark.parametrize("field,value", [("level", 1.0), ("eta_scale", 0.0), ("budget", -1.0)])
def test_committee_config_refuses_values_out_of_range(field, value):
    with pytest.raises(ValueError, match=field):
        C.CommitteeConfig(**{field: value})


@pytest.mark.parametrize("k", [2, 3])
def test_separable_target_gives_the_committee_h_k_with_unit_coefficient(k):
    target = targets.separable(jax.random.key(0), 8, r=2, k=k)
    degrees, coeffs = C.separable_link(target)
    assert degrees == (k,)
    np.testing.assert_allclose(np.asarray(coeffs), [1.0], rtol=1e-6)
    assert C.committee_exponent(target) == k


def test_study_runs_the_separable_targets_under_the_committee_only_with_their_theory():
    from reprjax.studies import sgd_exponents as S

    assert S.exponents_of("sep2") == (2, 2) and S.exponents_of("sep3") == (3, 1)
    power2, text2 = S.theory("sep2", "committee")
    power3, text3 = S.theory("sep3", "committee")
    assert (power2, power3) == (1.0, 2.0) and "log d" in text2 and "log d" not in text3
    grid = S.grid(S.Config(dims=(16, 32), targets=("sep2", "sep3"), protocols=("committee",), seeds=2))
    assert sorted(t.label() for t in grid.targets) == ["separable,k=2,r=2", "separable,k=3,r=2"]
    with pytest.raises(ValueError, match="committee"):
        S.Config(targets=("sep3",), protocols=("online", "committee"))
