"""Hermite spectrum of a predictor with known coefficients, and the overlap order parameters."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reprjax.problem import targets
from reprjax.methods.overlaps import overlaps
from reprjax.methods.spectrum import hermite_spectrum, multi_indices_up_to

D, R = 10, 2
# terms on (z1, z2, v) with v a direction orthogonal to span(U): entries with v > 0 are energy outside span(U)
TERMS = [(0, 0, 0), (1, 0, 0), (0, 2, 0), (1, 1, 0), (2, 1, 0), (0, 0, 2), (1, 0, 1), (3, 0, 0)]


@jax.jit
def _spectrum(key, predictor, U):  # the predictor is an argument: one compilation for every drawn example
    return hermite_spectrum(key, predictor, U, degree=3, n_samples=8192)


@settings(max_examples=5, deadline=None)
@given(coeffs=st.lists(st.floats(-1.0, 1.0), min_size=len(TERMS), max_size=len(TERMS)),
       seed=st.integers(0, 2**16))
@example(coeffs=[0.0] * 7 + [1.0], seed=16)  # once beyond a fixed tolerance: h_3(z1) alone, heavy-tailed products
def test_spectrum_recovers_known_coefficients_by_degree_and_outside_span(coeffs, seed):
    U_full = targets.random_orthonormal(jax.random.key(seed), R + 1, D)
    predictor = targets.MultiIndexTarget.from_terms(U_full, list(zip(TERMS, coeffs)))
    spec = _spectrum(jax.random.key(seed + 1), predictor, U_full[:R])
    c = np.asarray(coeffs, np.float64)
    inside = np.asarray([t[2] == 0 for t in TERMS])
    degree = np.asarray([t[0] + t[1] for t in TERMS])
    want = np.asarray([np.sum(c[inside & (degree == k)] ** 2) for k in range(4)])
    chex.assert_shape(spec.energy, (4,))
    tol = 6.0 * np.asarray(spec.energy_se) + 0.01
    assert np.all(np.abs(np.asarray(spec.energy) - want) <= tol), (np.asarray(spec.energy), want, tol)
    assert abs(float(spec.perp) - np.sum(c[~inside] ** 2)) <= 6.0 * float(spec.perp_se) + 0.01
    # nothing above degree 3 inside span(U)
    assert abs(float(spec.higher)) <= 6.0 * (float(spec.in_span_se) + float(jnp.sum(spec.energy_se))) + 0.01
    # each coefficient within 6 of its own standard errors (the products f h_alpha are heavy-tailed: a fixed
    # tolerance failed on f = h_3(z1) alone, whose h_1 coefficient has a standard error of ~0.035 at 8192 pairs)
    for alpha, value in zip(TERMS, c):
        if alpha[2] == 0:
            i = spec.alphas.index(alpha[:2])
            assert abs(float(spec.coeffs[i]) - value) <= 6.0 * float(spec.coeffs_se[i]) + 0.01


def test_multi_indices_up_to_counts_every_monomial_once():
    alphas = multi_indices_up_to(3, 4)
    assert len(alphas) == len(set(alphas)) == 35  # C(3 + 4, 4)
    assert all(sum(a) <= 4 for a in alphas)


def test_overlaps_of_rows_inside_span_are_complete():
    U = targets.random_orthonormal(jax.random.key(0), R, D)
    W = jax.random.normal(jax.random.key(1), (6, R)) @ U
    ov = overlaps(W, U)
    np.testing.assert_allclose(ov.alignment, 1.0, rtol=1e-5)
    np.testing.assert_allclose(ov.mean_cosine, 1.0, rtol=1e-5)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.sampled_from([4, 16]))
def test_overlap_statistics_match_their_definitions(seed, m):
    U = targets.random_orthonormal(jax.random.key(seed), R, D)
    W = jax.random.normal(jax.random.key(seed + 1), (m, D))
    ov = overlaps(W, U)
    Wn, Un = np.asarray(W, np.float64), np.asarray(U, np.float64)
    M, Q, norms = Wn @ Un.T, Wn @ Wn.T, np.linalg.norm(Wn, axis=1)
    off = Q[~np.eye(m, dtype=bool)]
    np.testing.assert_allclose(ov.alignment, np.sum(M**2) / np.sum(Wn**2), rtol=1e-4)
    np.testing.assert_allclose(ov.overlap_sq, np.mean(M**2, 0), rtol=1e-4)
    np.testing.assert_allclose(ov.best_cosine, np.max(np.abs(M) / norms[:, None], 0), rtol=1e-4)
    np.testing.assert_allclose(ov.q_diag, np.mean(np.diag(Q)), rtol=1e-4)
    np.testing.assert_allclose(ov.q_offdiag, np.sqrt(np.mean(off**2)), rtol=1e-3)
    assert jnp.all(ov.best_cosine <= 1.0 + 1e-6)


def test_energy_standard_errors_match_the_spread_over_independent_keys():
    # a predictor with a heavy-tailed degree-4 part inside span(U) and a part outside it
    U_full = targets.random_orthonormal(jax.random.key(4), R + 1, D)
    predictor = targets.MultiIndexTarget.from_terms(U_full, [((2, 0, 0), 0.6), ((0, 4, 0), 0.5), ((1, 0, 1), 0.4)])
    spec = jax.vmap(lambda k: hermite_spectrum(k, predictor, U_full[:R], degree=4, n_samples=2048))(
        jax.random.split(jax.random.key(5), 24))
    for k, want in ((2, 0.36), (4, 0.25)):
        values, ses = np.asarray(spec.energy[:, k]), np.asarray(spec.energy_se[:, k])
        sd = values.std(ddof=1)
        assert abs(values.mean() - want) <= 4.0 * sd / np.sqrt(24) + 1e-4
        assert 0.5 <= np.sqrt(np.mean(ses**2)) / sd <= 2.0
    perp = np.asarray(spec.perp)
    assert abs(perp.mean() - 0.16) <= 4.0 * perp.std(ddof=1) / np.sqrt(24) + 1e-4  # the (1, 0, 1) term's 0.4^2
