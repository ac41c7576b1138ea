"""Information and generative exponents: the values the literature states (Ben Arous et al. 2021; Damian, Pillaud-
Vivien, Lee & Bruna 2024), exact conditional energies where they have a closed form, the symmetry zeros at rounding,
invariance under a one-to-one change of the label, and every kind of input the calculators accept."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax.problem import exponents as ex
from reprjax.problem import links as lk
from reprjax.problem import targets


@pytest.mark.parametrize("name, link, degrees, information, generative", [
    ("He2", "hermite_product", (2,), 2, 2), ("He3", "hermite_product", (3,), 3, 1),
    ("He4", "hermite_product", (4,), 4, 2), ("|z|", "abs", None, 2, 2), ("sign", "sign", None, 1, 1),
    ("tanh", "tanh", None, 1, 1), ("sign(z1 z2 z3)", "sign3", None, 3, 3),
])
def test_exponents_match_the_literature(name, link, degrees, information, generative):
    e = ex.exponents(link, degrees=degrees, max_degree=6)
    assert (e.information, e.generative) == (information, generative), name
    assert e.error < 1e-12  # polynomial between cuts, or smooth on a composite rule: converged to rounding
    below = e.conditional_energy[1:generative]
    assert np.all(below < 1e-25)  # the zeros are symmetries, kept exactly by the rules
    assert e.conditional_energy[generative] > 1e-2


def test_conditional_energy_of_a_two_valued_label_is_its_squared_hermite_coefficient():
    # y = sign(z): E[h_k | y] = c_k y, so E[E[h_k | y]^2] = c_k^2, with c_1 = sqrt(2 / pi) (E[E[z | y]^2] = 2 / pi)
    e = ex.exponents("sign", max_degree=9)
    np.testing.assert_allclose(e.conditional_energy[1:], e.hermite_energy[1:], atol=1e-13)
    assert e.conditional_energy[1] == pytest.approx(2 / math.pi, abs=1e-13)
    three = ex.exponents("sign3", max_degree=5)  # the same identity with multi-indices
    np.testing.assert_allclose(three.conditional_energy[1:], three.hermite_energy[1:], atol=1e-13)


def test_a_label_that_determines_h_k_has_conditional_energy_one():
    # |z| determines z^2, so h_2, h_4, ... are functions of the label: E[E[h_2k | y]^2] = 1
    e = ex.exponents("abs", max_degree=6)
    np.testing.assert_allclose(e.conditional_energy[[2, 4, 6]], 1.0, atol=1e-12)


@settings(max_examples=4, deadline=None)
@given(c=st.lists(st.floats(-1.0, 1.0).filter(lambda v: abs(v) > 0.05), min_size=4, max_size=4),
       keep=st.lists(st.booleans(), min_size=4, max_size=4).filter(any))
def test_generative_exponent_is_at_most_the_information_exponent_and_even_links_see_no_odd_degree(c, keep):
    terms = {(k + 1,): ci for k, (ci, on) in enumerate(zip(c, keep)) if on}
    target = targets.MultiIndexTarget.from_terms(jnp.eye(1), terms)
    e = ex.exponents(target, max_degree=4)
    assert e.information == min(k for (k,) in terms)
    assert e.generative is not None and e.generative <= e.information
    if all(k % 2 == 0 for (k,) in terms):
        assert e.generative == 2 and np.all(e.conditional_energy[1::2] < 1e-25)


@pytest.mark.parametrize("link", ["hermite_product", "abs"])
def test_generative_exponent_is_invariant_under_a_one_to_one_function_of_the_label(link):
    base, r = lk.catalogue_link(link, (3,) if link == "hermite_product" else None)
    squashed = lk.DeclaredLink(lambda z: jnp.tanh(base(z)), lk.link_kinks(base, r)[0], "tanh_of_" + link)
    assert ex.generative_exponent(squashed, r, max_degree=4) == ex.generative_exponent(base, r, max_degree=4)


def test_calculators_accept_targets_names_and_functions_with_kinks():
    t3 = targets.single_index(jax.random.key(0), 8, 3)
    assert (ex.information_exponent(t3), ex.generative_exponent(t3)) == (3, 1)
    link_t = lk.link_target(jax.random.key(1), 8, "sign3")
    assert (ex.information_exponent(link_t), ex.generative_exponent(link_t, max_degree=4)) == (3, 3)
    relu = ex.exponents(lambda z: jax.nn.relu(z[..., 0]), kinks=(0.0,), max_degree=4)
    assert (relu.information, relu.generative) == (1, 1) and relu.error < 1e-12
    # z1 z2 z3 reveals |z1| (degree 2) where sign(z1 z2 z3) hides everything below degree 3
    assert ex.generative_exponent("hermite_product", degrees=(1, 1, 1), max_degree=3) == 2
    with pytest.raises(ValueError, match="resolves degrees up to 1 only"):
        ex.generative_exponent("hermite_product", degrees=(1,) * 10, max_degree=2)
    with pytest.raises(ValueError, match="link_or_target"):
        ex.generative_exponent(3.0)
