"""Kernel theory: plateaus from Hermite energies, the harmonic split of a target (reprjax.kernels.theory), the
learning curve from theory (reprjax.kernels.learning_curve), and the study's use of them."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax.kernels import infinite, learning_curve
from reprjax.kernels import theory as kernel_theory
from reprjax.problem import targets
from reprjax.studies import sample_complexity


def test_paper_target_plateaus_are_one_then_half_then_zero():
    target = targets.paper_target(jax.random.key(0), 16)
    assert kernel_theory.energy_by_degree(target) == pytest.approx({2: 0.5, 4: 0.5})
    rows = kernel_theory.kernel_plateaus(target)
    assert [r["error"] for r in rows] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.0])
    assert [(r["n_low"], r["n_high"]) for r in rows[2:4]] == [(256.0, 4096.0), (4096.0, 65536.0)]


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**16), p=st.integers(3, 5))
def test_energies_sum_to_the_second_moment_and_plateaus_decrease(seed, p):
    target = targets.random_polynomial(jax.random.key(seed), d=8, r=2, p=p)
    energy = kernel_theory.energy_by_degree(target)
    assert sum(energy.values()) == pytest.approx(float(target.second_moment()), rel=1e-5)
    errors = [r["error"] for r in kernel_theory.kernel_plateaus(target)]
    assert errors[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b - 1e-12 for a, b in zip(errors, errors[1:]))


def test_study_fits_kernels_at_their_own_threshold(monkeypatch):
    monkeypatch.setattr(sample_complexity, "THEORY_DIMS", (16,))  # one dimension past the study's keeps it quick
    config = sample_complexity.Config(dims=(8, 12), methods=("algorithm1", "ntk_infinite"), seeds=2,
                                      kernel_threshold=0.3, bootstrap=20)
    rows = []
    for d in (8, 12):
        for n in (100, 1000, 10_000, 100_000):
            for seed in range(2):
                # kernel curve crosses 0.3 near n = d^3 / 4; the network one crosses 0.25 near n = 2 d^2
                rows.append(dict(method="ntk_infinite", d=d, n=n, seed=seed, status="ok",
                                 test_nmse=0.5 * np.exp(-n / (d**3 / 2)) + 0.2 + 0.001 * seed))
                rows.append(dict(method="algorithm1", d=d, n=n, seed=seed, status="ok",
                                 test_nmse=float(np.exp(-n / (2 * d**2))) + 0.001 * seed))
    summary = sample_complexity.summarise(pd.DataFrame(rows), config)
    thresholds = dict(zip(summary["n_star"]["method"], summary["n_star"]["threshold"]))
    assert thresholds == {"algorithm1": 0.25, "ntk_infinite": 0.3}
    assert set(summary["plateaus"]) == {8, 12}
    text = sample_complexity.report(summary, config)
    assert "0.3 for ntk_infinite" in text and "kernel plateaus" in text
    theory = summary["kernel_theory"]
    assert list(theory["d"]) == [8, 12, 16] and list(theory["simulated"]) == [True, True, False]
    assert np.all(np.diff(theory["n_star_extended"]) > 0) and "predicted by the kernel learning curve" in text
    assert set(summary["kernel_theory_curves"]["d"]) == {8, 12}


# --- the learning curve from theory (reprjax.kernels.learning_curve) ---------------------------------------------


def _sphere_grid(n1: int) -> tuple[np.ndarray, np.ndarray]:
    """A product quadrature on S^2: Gauss-Legendre in cos(theta) times 2 n1 equispaced phi (weights sum to 1)."""
    c, wc = np.polynomial.legendre.leggauss(n1)
    phi = np.arange(2 * n1) * np.pi / n1
    ct, pp = np.meshgrid(c, phi, indexing="ij")
    st = np.sqrt(1 - ct**2)
    u = np.stack([st * np.cos(pp), st * np.sin(pp), ct], -1).reshape(-1, 3)
    return u, np.repeat(wc / 2, 2 * n1) / (2 * n1)


def _gram_spectrum(kernel_fn, spectrum, n1: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: eigenvalues of W^1/2 K W^1/2 on the spectrum's radii times a sphere grid, and the theory's
    eigenvalues repeated by multiplicity, both sorted down."""
    u, w = _sphere_grid(n1)
    x = (spectrum.radii[:, None, None] * u[None]).reshape(-1, 3)
    ww = np.sqrt((spectrum.weights[:, None] * w[None]).reshape(-1))
    with jax.enable_x64(True):
        gram = np.asarray(kernel_fn(jnp.asarray(x), None))
    brute = np.linalg.eigvalsh(ww[:, None] * gram * ww[None])[::-1]
    theory = np.sort(np.repeat(spectrum.values, spectrum.multiplicity.astype(int)))[::-1]
    return brute, theory


def _exp_kernel(x1, x2=None):
    return jnp.exp(x1 @ (x1 if x2 is None else x2).T / x1.shape[-1])


@pytest.mark.parametrize("geometry", ["sphere", "gaussian"])
def test_degree_eigenvalues_equal_the_gram_spectrum_of_a_smooth_kernel(geometry):
    # exp(<x, x'> / d) is analytic: a product quadrature grid integrates it to round-off, so the Gram spectrum on it
    # is the operator's, and each degree k shows up 2k + 1 times (d = 3)
    spectrum = learning_curve.kernel_spectrum(_exp_kernel, 3, k_max=8, geometry=geometry, radial_nodes=3)
    brute, theory = _gram_spectrum(_exp_kernel, spectrum, 12)
    np.testing.assert_allclose(brute[:16], theory[:16], rtol=1e-8)


def test_ntk_degree_eigenvalues_are_the_limit_of_refined_gram_spectra():
    # the NTK has a kink on the diagonal, so a grid converges to the operator slowly; the gap must shrink with it
    kernel = functools.partial(infinite.ntk_infinite, bias_var=1.0)
    spectrum = learning_curve.kernel_spectrum(kernel, 3, k_max=8, geometry="sphere")
    gaps = []
    for n1 in (8, 16):
        brute, theory = _gram_spectrum(kernel, spectrum, n1)
        gaps.append(np.max(np.abs(brute[:16] - theory[:16]) / theory[:16]))
    assert gaps[1] < 0.02 and gaps[1] < gaps[0] / 4


def test_multiplicities_count_the_harmonics():
    # N(d, k) sums to the dimension of the polynomials of degree <= k restricted to the sphere:
    # C(d + k - 1, k) + C(d + k - 2, k - 1)
    for d in (3, 8, 50):
        for k in range(1, 7):
            total = sum(learning_curve.multiplicity(d, j) for j in range(k + 1))
            assert total == math.comb(d + k - 1, k) + math.comb(d + k - 2, k - 1)
    assert [learning_curve.multiplicity(3, k) for k in range(5)] == [1, 3, 5, 7, 9]


@settings(deadline=None, max_examples=6)
@given(d=st.integers(3, 3000))
def test_gegenbauer_polynomials_are_orthogonal_under_the_angle_quadrature(d):
    t, w = learning_curve.angle_quadrature(d, 40)
    p = learning_curve.gegenbauer_polynomials(d, 6, t)
    gram = (p * w) @ p.T
    expected = np.diag([1.0 / learning_curve.multiplicity(d, k) for k in range(7)])
    np.testing.assert_allclose(gram, expected, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("d", [3, 10, 100])
def test_angle_quadrature_is_scipys_gauss_jacobi_rule(d):
    t, w = learning_curve.angle_quadrature(d, 30)
    t_ref, w_ref = scipy.special.roots_jacobi(30, (d - 3) / 2, (d - 3) / 2)
    np.testing.assert_allclose(t, t_ref, atol=1e-12)
    np.testing.assert_allclose(w, w_ref / w_ref.sum(), rtol=1e-8, atol=1e-300)


@settings(deadline=None, max_examples=6)
@given(d=st.integers(3, 2000))
def test_radial_quadrature_gives_the_chi_moments(d):
    r, w = learning_curve.radial_quadrature(d, 8)
    for q in range(1, 6):  # E|x|^(2q) = d (d + 2) ... (d + 2q - 2)
        assert float(w @ r ** (2 * q)) == pytest.approx(math.prod(d + 2 * j for j in range(q)), rel=1e-10)


def test_h2_puts_one_over_d_of_its_energy_on_the_radius():
    # h2(z) = (z^2 - |x|^2 / d) / sqrt(2) + (|x|^2 / d - 1) / sqrt(2): harmonic degree 2 and a radial part, E = 1 / d
    d = 10
    target = targets.single_index(jax.random.key(0), d, 2)
    gram = kernel_theory.harmonic_gram(target)
    moment = [math.prod(d + 2 * j for j in range(q // 2)) if q % 2 == 0 else 0.0 for q in range(5)]
    energy = {k: sum(g[a, b] * moment[a + b] for a in range(3) for b in range(3)) for k, g in gram.items()}
    assert energy == pytest.approx({0: 1 / d, 2: 1 - 1 / d}, rel=1e-12)


@settings(deadline=None, max_examples=5)
@given(seed=st.integers(0, 2**16), p=st.integers(3, 5), d=st.integers(3, 40))
def test_harmonic_split_keeps_the_second_moment_and_its_parts_are_harmonic(seed, p, d):
    target = targets.random_polynomial(jax.random.key(seed), d=d, r=2, p=p)
    gram = kernel_theory.harmonic_gram(target)
    moments = [math.prod(d + 2 * j for j in range(q // 2)) if q % 2 == 0 else 0.0 for q in range(2 * p + 1)]
    total = sum(g[a, b] * moments[a + b] for g in gram.values() for a in range(g.shape[0]) for b in range(g.shape[0]))
    assert total == pytest.approx(float(target.second_moment()), rel=1e-5)
    poly = kernel_theory._monomials(target, 0)
    top = {key: c for key, c in poly.items() if sum(key[0]) == p}
    for k, part in kernel_theory.fischer_parts(top, p, d).items():
        scale = max(abs(c) for c in part.values())
        assert all(abs(c) <= 1e-9 * scale for c in kernel_theory._laplacian(part, d).values()), k


def test_eigenlearning_matches_isotropic_regression_in_closed_form():
    # one eigenvalue with multiplicity M, no ridge: L = n / M and error = (1 - n/M) |v|^2 + sigma^2 n / (M - n)
    m, n, v2, noise = 400, 100.0, 2.0, 0.3
    pred = learning_curve.eigenlearning([1.0], [m], [v2], n, 0.0, noise)
    assert pred.learnability[0] == pytest.approx(n / m)
    assert pred.error == pytest.approx((1 - n / m) * v2 + noise * n / (m - n))


def test_eigenlearning_predicts_ridge_on_gaussian_features():
    # a diagonal toy problem computed directly: features sqrt(lambda_i) g_i with g ~ N(0, I), target v . g; the
    # test error of a fit is |beta_hat - v|^2 exactly.  Averaged over draws it must match the prediction to within
    # its standard error (seeds 0, 1, 2 of this setting: -0.3, 1.0 and -0.3 standard errors)
    rng = np.random.default_rng(0)
    modes, n, ridge, noise = 300, 120, 1e-2, 0.1
    lam = np.arange(1, modes + 1, dtype=float) ** -1.5
    v = rng.normal(size=modes) * np.sqrt(lam)
    errors = []
    for _ in range(60):
        g = rng.normal(size=(n, modes))
        y = g @ v + np.sqrt(noise) * rng.normal(size=n)
        alpha = np.linalg.solve((g * lam) @ g.T + ridge * np.eye(n), y)
        errors.append(np.sum((lam * (g.T @ alpha) - v) ** 2))
    pred = learning_curve.eigenlearning(lam, np.ones(modes), v**2, n, ridge, noise)
    mean, se = np.mean(errors), np.std(errors, ddof=1) / np.sqrt(len(errors))
    assert abs(mean - pred.error) < 4 * se


def test_predicted_n_star_is_where_the_predicted_error_crosses():
    kernel = functools.partial(infinite.ntk_infinite, bias_var=1.0)
    target = targets.paper_target(jax.random.key(0), 8)
    spectrum = learning_curve.kernel_spectrum(kernel, 8)
    power = learning_curve.target_power(spectrum, target)
    assert power.sum() == pytest.approx(1.0, rel=1e-8)
    strengths = (1e-6, 1e-3)
    n_star = learning_curve.predicted_n_star(spectrum, power, 0.3, strengths)
    assert learning_curve.predicted_error(spectrum, power, n_star, strengths)[0] == pytest.approx(0.3, abs=1e-4)
    errors = [learning_curve.predicted_error(spectrum, power, n, strengths)[0] for n in (100, 1000, 10_000)]
    assert errors[0] > errors[1] > errors[2]


def test_local_exponents_recover_a_power_law():
    dims = [32, 64, 128]
    assert learning_curve.local_exponents(dims, [3.0 * d**4 for d in dims]) == pytest.approx([4.0, 4.0])
