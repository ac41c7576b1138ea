"""Gaussian rules split at kinks: exact moments of truncated Gaussians, symmetry, and kink-exact Hermite coefficients
of relu, |z| and sign against their closed forms (Stein: E[g He_k] = E[g^(k)], with g'' = delta for relu)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from reprjax.maths import piecewise_quadrature as pq
from reprjax.problem import links as lk


def truncated_moments(a: float, b: float, kmax: int) -> np.ndarray:
    """``E[z^k 1{a <= z <= b}]``, ``k = 0..kmax``, by one 80-point Gauss-Legendre rule on ``[a, b]`` (the integrand
    is entire: converged to rounding for ``b - a <= 3``)."""
    x, w = np.polynomial.legendre.leggauss(80)
    z = 0.5 * (a + b) + 0.5 * (b - a) * x
    w = 0.5 * (b - a) * w * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return np.asarray([np.sum(w * z**k) for k in range(kmax + 1)])


@settings(max_examples=10, deadline=None)
@given(a=st.floats(-2.5, 1.5), width=st.floats(0.2, 3.0), order=st.sampled_from([3, 6]))
def test_piece_rule_integrates_polynomials_up_to_degree_2n_minus_1_on_its_piece(a, width, order):
    b = a + width
    nodes, weights = pq.gaussian_piece_rule(a, b, order)
    assert np.all((nodes > a) & (nodes < b))
    want = truncated_moments(a, b, 2 * order - 1)
    got = np.asarray([np.sum(weights * nodes**k) for k in range(2 * order)])
    scale = np.sqrt(truncated_moments(a, b, 4 * order - 2)[0::2])  # |E[z^k 1{..}]| <= sqrt(E[z^2k 1{..}])
    np.testing.assert_allclose(got, want, atol=1e-14 * scale.max(), rtol=1e-12)


@pytest.mark.parametrize("order", [25, 50, 100])
def test_half_line_rule_keeps_relative_accuracy_at_high_degree(order):
    # the tail weights come from Christoffel numbers, so even z^(2n-1) (dominated by the last node) is exact
    nodes, weights = pq.gaussian_piece_rule(0.0, math.inf, order)
    ks = np.arange(0, 2 * order, 7)
    exact = np.asarray([2 ** ((k - 1) / 2) * math.gamma((k + 1) / 2) / math.sqrt(2 * math.pi) for k in ks])
    got = np.asarray([np.sum(weights * nodes ** float(k)) for k in ks])
    np.testing.assert_allclose(got, exact, rtol=1e-12)


def test_split_rule_is_exactly_mirror_symmetric_for_symmetric_kinks_and_is_a_probability():
    nodes, weights = pq.split_gaussian_rule((1.5, 0.0, -1.5, 0.0), 7)
    assert nodes.size == 4 * 7 and np.all(np.diff(nodes) > 0)
    np.testing.assert_array_equal(nodes, -nodes[::-1])
    np.testing.assert_array_equal(weights, weights[::-1])
    assert np.sum(weights) == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(ValueError, match="kinks"):
        pq.split_gaussian_rule((math.inf,), 5)


def _he_at_zero(m: int) -> float:
    return 0.0 if m % 2 else (-1.0) ** (m // 2) * float(special.factorial2(m - 1)) if m else 1.0


@pytest.mark.parametrize("name", ["relu", "abs", "sign"])
def test_kink_split_hermite_coefficients_match_closed_forms_to_1e10(name):
    phi0 = 1.0 / math.sqrt(2.0 * math.pi)
    degree = 16
    norm = np.sqrt([math.factorial(k) for k in range(degree + 1)])
    if name == "relu":  # relu'' = delta: c_k = He_{k-2}(0) phi(0) / sqrt(k!)
        want = [phi0, 0.5] + [_he_at_zero(k - 2) * phi0 for k in range(2, degree + 1)]
    elif name == "abs":  # |z|'' = 2 delta
        want = [2 * phi0, 0.0] + [2 * _he_at_zero(k - 2) * phi0 for k in range(2, degree + 1)]
    else:  # sign' = 2 delta
        want = [0.0] + [2 * _he_at_zero(k - 1) * phi0 for k in range(1, degree + 1)]
    want = np.asarray(want) / np.where(np.arange(degree + 1) >= 1, norm, 1.0)
    link, r = lk.LINKS[name]
    e = lk.hermite_expansion(link, r, degree)
    np.testing.assert_allclose(e.coeffs, want, rtol=0, atol=1e-10)
    assert e.second_moment == pytest.approx({"relu": 0.5, "abs": 1.0, "sign": 1.0}[name], abs=1e-12)
    # the same link without its kink converges like 1 / order: the split is what makes it exact
    bare = lk.hermite_expansion(lk.DeclaredLink(link.fn, (), name + "_bare"), r, degree)
    assert np.max(np.abs(bare.coeffs - want)) > 1e3 * np.max(np.abs(e.coeffs - want))
