"""Targets with any link: the quadrature against exact Hermite coefficients (numpy.polynomial.hermite_e and
reprjax.maths.hermite), closed forms of non-polynomial links, and the target interface the data and metrics use."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import hermite_e

from reprjax.problem import links as lt
from reprjax.problem import targets
from reprjax.problem.data import sample_dataset
from reprjax.methods.scoring import held_out_errors


@dataclasses.dataclass(frozen=True)
class HermiteESeries:
    """The link ``sum_k b_k He_k(z_1)`` (probabilists' Hermite, unnormalised), evaluated in the power basis."""

    b: tuple[float, ...]

    def __call__(self, z):
        power = hermite_e.herme2poly(np.asarray(self.b))
        return jnp.polyval(jnp.asarray(power[::-1], z.dtype), z[..., 0])


@settings(max_examples=8, deadline=None)
@given(b=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=9))
def test_quadrature_reproduces_exact_coefficients_of_polynomial_links(b):
    exp = lt.hermite_expansion(HermiteESeries(tuple(b)), 1, degree=10)
    # normalised h_k = He_k / sqrt(k!): the coefficient of h_k is b_k sqrt(k!)
    exact = np.zeros(11)
    exact[:len(b)] = np.asarray(b) * np.sqrt([math.factorial(k) for k in range(len(b))])
    np.testing.assert_allclose(exp.coeffs, exact, atol=1e-9 * (1 + np.abs(exact).max()))
    np.testing.assert_allclose(exp.second_moment, np.sum(exact**2), rtol=1e-9)
    assert exp.error < 1e-8


@settings(max_examples=6, deadline=None)
@given(c=st.lists(st.floats(-1.0, 1.0), min_size=5, max_size=5))
def test_quadrature_reproduces_multi_index_coefficients(c):
    alphas = ((0, 0), (1, 1), (2, 0), (0, 3), (2, 2))
    poly = targets.MultiIndexTarget(U=jnp.eye(2), coeffs=jnp.asarray(c, jnp.float32), alphas=alphas)
    exp = lt.hermite_expansion(poly.g, 2, degree=4)
    got = dict(zip(exp.alphas, exp.coeffs))
    for alpha, ci in zip(alphas, np.asarray(poly.coeffs, np.float64)):
        assert got[alpha] == pytest.approx(ci, abs=1e-6)
    others = [v for a, v in got.items() if a not in alphas]
    assert np.max(np.abs(others)) < 1e-6


def test_non_polynomial_links_match_closed_forms_within_the_reported_error():
    relu = lt.link_target(jax.random.key(0), 4, "relu", normalise=False).expansion(2)
    want = [1 / math.sqrt(2 * math.pi), 0.5, 1 / (2 * math.sqrt(math.pi))]  # ReLU's h_0, h_1, h_2 coefficients
    np.testing.assert_allclose(relu.coeffs[:3], want, atol=1e-12)  # split at the kink: exact
    assert relu.second_moment == pytest.approx(0.5, abs=1e-12) and relu.error < 1e-12
    erf = lt.link_target(jax.random.key(0), 4, "erf", normalise=False).expansion(1)
    assert erf.coeffs[1] == pytest.approx(2 / math.sqrt(3 * math.pi), abs=1e-8)  # E[erf'(z)] (Stein)
    sign3 = lt.link_target(jax.random.key(0), 4, "sign3", normalise=False).expansion(3)
    got = dict(zip(sign3.alphas, sign3.coeffs))
    assert got[(1, 1, 1)] == pytest.approx((2 / math.pi) ** 1.5, abs=1e-12)
    assert sign3.second_moment == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("link, degrees, exponent", [
    ("tanh", None, 1), ("relu", None, 1), ("erf", None, 1), ("sign3", None, 3),
    ("hermite_product", (3,), 3), ("hermite_product", (2, 2), 4), ("hermite_product", (1, 1), 2),
])
def test_information_exponent_from_the_quadrature(link, degrees, exponent):
    t = lt.link_target(jax.random.key(1), 6, link, degrees=degrees)
    assert t.expansion(6).information_exponent() == exponent
    assert t.information_exponent == exponent
    assert f"information exponent={exponent}" in t.describe()


def test_hessian_of_the_truncation_is_the_link_hessian():
    t = lt.link_target(jax.random.key(2), 6, "hermite_product", degrees=(1, 1))
    np.testing.assert_allclose(t.polynomial(4).latent_hessian(), t.expansion(4).latent_hessian(), atol=1e-6)
    np.testing.assert_allclose(t.expansion(4).latent_hessian(), [[0, 1], [1, 0]], atol=1e-9)


def test_link_target_works_with_data_and_metrics():
    t = lt.link_target(jax.random.key(3), 8, "tanh")
    ds = jax.jit(lambda k: sample_dataset(k, t, 20_000))(jax.random.key(4))
    np.testing.assert_allclose(ds.f, t.g(ds.x @ t.U.T))
    assert float(jnp.mean(ds.f**2)) == pytest.approx(1.0, abs=0.05)  # normalised, 20k-sample Monte Carlo
    err = held_out_errors(jax.random.key(5), t, lambda x: jnp.zeros(x.shape[0]), n_test=512)
    assert float(err.nmse) == pytest.approx(float(err.mse), rel=1e-5)  # E f*^2 = 1 exactly
    built = jax.jit(lambda k: lt.link_target(k, 8, "relu").U)(jax.random.key(6))
    np.testing.assert_allclose(built @ built.T, np.eye(1), atol=1e-5)


@pytest.mark.parametrize("kwargs, name", [(dict(link="cubic"), "link"), (dict(link="hermite_product"), "degrees"),
                                          (dict(link="sign3", d=2), "d")])
def test_catalogue_rejects_bad_arguments_naming_them(kwargs, name):
    args = dict(d=8) | kwargs
    with pytest.raises(ValueError, match=name):
        lt.link_target(jax.random.key(0), **args)


def _named(fn, name):
    fn.__name__ = name
    return fn


@pytest.mark.parametrize("fn, message", [
    (_named(lambda z: z[..., 0] * jnp.nan, "nan_link"), "not finite on the quadrature grid"),
    (_named(lambda z: jnp.where(z[..., 0] > 0, jnp.inf, 1.0), "half_inf_link"), "not finite on the quadrature grid"),
    (_named(lambda z: 0.0 * z[..., 0], "zero_link"), "positive"),
    (_named(lambda z: jnp.exp(z[..., 0] ** 2), "exp_z2_link"), "E\\[g\\^2\\] = inf"),
    (_named(lambda z: jnp.exp(z[..., 0] ** 2 / 4), "exp_z2_over_4_link"), "does not settle"),
    (_named(lambda z: z, "vector_link"), "one value per point"),
])
def test_a_bad_link_is_refused_in_one_line_naming_it_when_a_target_is_built(fn, message):
    U = targets.random_orthonormal(jax.random.key(0), 1, 8)
    with pytest.raises(ValueError, match=message) as info:
        lt.LinkTarget(U=U, link=fn, name=fn.__name__)
    assert fn.__name__ in str(info.value) and "\n" not in str(info.value)


def test_a_heavy_but_square_integrable_link_is_accepted_with_its_exact_second_moment():
    # E[exp(2 z^2 / 5)] = 1 / sqrt(1 - 4 / 5) = sqrt(5)
    t = lt.LinkTarget(U=jnp.eye(1, 4), link=_named(lambda z: jnp.exp(z[..., 0] ** 2 / 5), "exp_z2_over_5"))
    assert t.expansion(0).second_moment == pytest.approx(math.sqrt(5.0), rel=1e-3)


def test_hermite_products_over_many_directions_are_exact_and_guard_their_size():
    ten = lt.link_target(jax.random.key(0), 16, "hermite_product", degrees=(1,) * 10)  # used to walk 7^11 indices
    assert ten.information_exponent == 10 and ten.scale == 1.0
    e = ten.expansion(2)
    assert e.error == 0.0 and len(e.alphas) == math.comb(12, 10) and not np.any(e.coeffs)
    wide = lt.link_target(jax.random.key(0), 32, "hermite_product", degrees=(1,) * 21)  # one node per axis before
    assert wide.information_exponent == 21
    with pytest.raises(ValueError, match="296,010 multi-indices"):
        wide.expansion(6)


def test_a_grid_that_cannot_resolve_the_degree_is_refused_naming_the_link():
    U = targets.random_orthonormal(jax.random.key(0), 21, 32)
    with pytest.raises(ValueError, match="'sum21'.*too few per direction"):
        lt.LinkTarget(U=U, link=lt.DeclaredLink(lambda z: jnp.sum(z, -1), (), "sum21"))
    six = lt.LinkTarget(U=targets.random_orthonormal(jax.random.key(0), 6, 8),
                        link=lt.DeclaredLink(lambda z: jnp.prod(z, -1), (), "prod6"))
    with pytest.raises(ValueError, match="'prod6'.*resolve Hermite degree 11"):  # 11 nodes per direction fit
        six.expansion(11)


def test_a_sweep_checks_link_targets_before_running():
    from reprjax.sweep.grid import TargetSpec

    TargetSpec.of("link", normalise=True, link="hermite_product", degrees=(1,) * 21).check(32)
    with pytest.raises(ValueError, match="degrees"):
        TargetSpec.of("link", link="hermite_product", degrees=(17,)).check(32)
