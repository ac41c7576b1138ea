"""Hermite polynomials: orthonormality, recurrence and derivatives against numpy.polynomial.hermite_e."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.polynomial import hermite_e

from reprjax.maths import hermite


def _numpy_h(z: np.ndarray, k: int) -> np.ndarray:
    coef = np.zeros(k + 1)
    coef[k] = 1.0
    return hermite_e.hermeval(z, coef) / math.sqrt(math.factorial(k))


def test_orthonormal_by_quadrature_up_to_degree_10():
    # 11 nodes integrate degree <= 21 exactly, enough for h_j h_k with j, k <= 10
    gram = hermite.gaussian_expectation_numpy(
        lambda z: np.einsum("nj,nk->njk", hermite.hermite_values_numpy(z[:, 0], 10),
                            hermite.hermite_values_numpy(z[:, 0], 10)), r=1, order=11)
    np.testing.assert_allclose(gram, np.eye(11), atol=1e-12)


def test_orthonormal_by_quadrature_float32_jax():
    gram = hermite.gaussian_expectation(
        lambda z: jnp.einsum("nj,nk->njk", hermite.hermite_values(z[:, 0], 10), hermite.hermite_values(z[:, 0], 10)),
        r=1, order=11)
    np.testing.assert_allclose(np.asarray(gram), np.eye(11), atol=2e-5)


def test_multi_index_orthonormal_in_two_dimensions():
    alphas = [(a, b) for a in range(5) for b in range(5) if a + b <= 4]
    gram = hermite.gaussian_expectation_numpy(
        lambda z: np.einsum("nj,nk->njk", *(2 * [np.asarray(hermite.multi_index_hermite(jnp.asarray(z), alphas),
                                                               np.float64)])), r=2, order=6)
    np.testing.assert_allclose(gram, np.eye(len(alphas)), atol=2e-5)


@given(z=st.lists(st.floats(-6.0, 6.0), min_size=8, max_size=8))
def test_recurrence_matches_numpy_hermite_e(z):
    z = np.asarray(z)
    values = np.asarray(hermite.hermite_values(jnp.asarray(z, jnp.float32), hermite.MAX_DEGREE))
    exact64 = hermite.hermite_values_numpy(z, hermite.MAX_DEGREE)
    for k in range(hermite.MAX_DEGREE + 1):
        ref = _numpy_h(z, k)
        np.testing.assert_allclose(exact64[:, k], ref, rtol=1e-9, atol=1e-9)
        # float32 recurrence: relative error bounded on the scale of the polynomial's size at z
        scale = 1.0 + np.abs(ref)
        assert np.all(np.abs(values[:, k] - ref) <= 1e-4 * scale * (1 + k)), k


@given(z=st.lists(st.floats(-5.0, 5.0), min_size=8, max_size=8))
def test_derivative_identity_matches_numpy(z):
    z = np.asarray(z)
    deriv = np.asarray(hermite.hermite_derivatives(jnp.asarray(z, jnp.float32), 12))
    for k in range(13):
        coef = np.zeros(k + 1)
        coef[k] = 1.0
        ref = hermite_e.hermeval(z, hermite_e.hermeder(coef)) / math.sqrt(math.factorial(k))
        np.testing.assert_allclose(deriv[:, k], ref, rtol=1e-4, atol=1e-4 * (1 + np.abs(ref)).max())


def test_multi_index_product_matches_coordinatewise_values():
    z = jnp.asarray([[0.3, -1.2, 2.0], [1.5, 0.1, -0.7]])
    out = hermite.multi_index_hermite(z, [(1, 0, 2), (0, 3, 1), (0, 0, 0)])
    zn = np.asarray(z, np.float64)
    ref = np.stack([
        _numpy_h(zn[:, 0], 1) * _numpy_h(zn[:, 2], 2),
        _numpy_h(zn[:, 1], 3) * _numpy_h(zn[:, 2], 1),
        np.ones(2),
    ], axis=-1)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5)


def test_quadrature_exact_for_polynomials():
    # E[z^4] = 3, E[z1^2 z2^4] = 3, E[z1 z2] = 0 for independent standard normals
    assert abs(float(hermite.gaussian_expectation_numpy(lambda z: z[:, 0] ** 4, 1, 3)) - 3.0) < 1e-12
    assert abs(float(hermite.gaussian_expectation_numpy(lambda z: z[:, 0] ** 2 * z[:, 1] ** 4, 2, 3)) - 3.0) < 1e-12
    assert abs(float(hermite.gaussian_expectation_numpy(lambda z: z[:, 0] * z[:, 1], 2, 2))) < 1e-12


@pytest.mark.parametrize("bad", [-1, hermite.MAX_DEGREE + 1, 2.5])
def test_degree_out_of_range_raises(bad):
    with pytest.raises(ValueError, match="max_degree"):
        hermite.hermite_values(jnp.zeros(3), bad)


def test_multi_index_entries_out_of_range_raise():
    with pytest.raises(ValueError, match="alphas"):
        hermite.multi_index_hermite(jnp.zeros((2, 2)), [(hermite.MAX_DEGREE + 1, 0)])
    with pytest.raises(ValueError, match="alphas"):
        hermite.multi_index_hermite(jnp.zeros((2, 3)), [(1, 0)])
