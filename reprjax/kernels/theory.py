"""What kernel ridge can learn at a given sample count: the degree-``k`` plateaus of a rotation-invariant kernel.

For a rotation-invariant kernel (the infinite-width NTK and NNGP included) and ``d^k << n << d^(k+1)``, kernel ridge
learns the projection of ``f*`` on polynomials of degree ``<= k`` and nothing above (Ghorbani, Mei, Misiakiewicz &
Montanari 2021; Damian, Lee & Soltanolkotabi 2022, Section 3, the kernel lower bound), so its normalised test error
plateaus at the share of ``E[f*^2]`` carried by degrees above ``k``.  For the paper target
``[h2(z1) + h2(z2) + h4(z1) + h4(z2)] / 2`` that is 1 below ``n ~ d^2``, 0.5 between ``d^2`` and ``d^4`` and 0 past
``d^4``.  The Hermite features ``h_alpha(Ux)`` are orthonormal, so the energy of degree ``k`` is the sum of the
squared coefficients with ``|alpha| = k``.

:func:`harmonic_gram` splits a target the finer way the learning curve needs (:mod:`reprjax.kernels.learning_curve`):
for ``x = r u`` (``|u| = 1``) into spherical-harmonic degrees ``k`` with their dependence on the radius ``r``.  A
Hermite degree ``l`` part of ``f*`` spreads over harmonic degrees ``l, l - 2, ...`` (``h_2(z) = (z^2 - |x|^2 / d) /
sqrt 2 + (|x|^2 / d - 1) / sqrt 2``: harmonic degree 2 plus a radial part of energy ``1 / d``), which is what a kernel
on ``N(0, I_d)`` inputs sees.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from numpy.polynomial import hermite_e

from reprjax.problem.targets import MultiIndexTarget


def energy_by_degree(target: MultiIndexTarget) -> dict[int, float]:
    """``{k: sum of c_alpha^2 over |alpha| = k}`` for a (concrete) target; degrees without terms are left out."""
    coeffs = np.asarray(target.coeffs, np.float64)
    if coeffs.ndim != 1:
        raise ValueError(f"energy_by_degree takes one target (coefficients of shape (T,)), got {coeffs.shape}")
    out: dict[int, float] = {}
    for alpha, c in zip(target.alphas, coeffs):
        out[sum(alpha)] = out.get(sum(alpha), 0.0) + float(c) ** 2
    return dict(sorted(out.items()))


def kernel_plateaus(target: MultiIndexTarget, d: int | None = None) -> list[dict[str, float]]:
    """The error plateaus of rotation-invariant kernel ridge, one per degree ``k`` up to the target's degree.

    Returns rows ``{k, error, n_low, n_high}``: for ``n_low = d^k << n << n_high = d^(k+1)`` the normalised error is
    ``error`` = energy above degree ``k`` over ``E[f*^2]`` (``d`` defaults to the target's).  The constant part is
    learned at once, so ``k`` starts at 0.
    """
    d = target.d if d is None else d
    energy = energy_by_degree(target)
    total = sum(energy.values())
    if total <= 0:
        raise ValueError("the target has zero energy: plateaus are undefined")
    degree = max(energy)
    return [dict(k=k, error=sum(e for j, e in energy.items() if j > k) / total, n_low=float(d) ** k,
                 n_high=float(d) ** (k + 1)) for k in range(degree + 1)]


#: A polynomial in ``z = U x`` (``r`` coordinates) and ``s = |x|^2``: ``{(alpha, j): c}`` is ``sum c z^alpha s^j``.
_Poly = dict[tuple[tuple[int, ...], int], float]


def _monomials(target: MultiIndexTarget, min_degree: int) -> _Poly:
    """``f*`` as monomials of ``z``, Hermite terms of degree below ``min_degree`` left out."""
    coeffs = np.asarray(target.coeffs, np.float64)
    if coeffs.ndim != 1:
        raise ValueError(f"harmonic_gram takes one target (coefficients of shape (T,)), got {coeffs.shape}")
    out: _Poly = defaultdict(float)
    for alpha, c in zip(target.alphas, coeffs):
        if sum(alpha) < min_degree:
            continue
        terms = {(): float(c)}
        for a in alpha:  # h_a = He_a / sqrt(a!), expanded in powers
            powers = hermite_e.herme2poly([0.0] * a + [1.0 / math.sqrt(math.factorial(a))])
            terms = {key + (e,): v * float(q) for key, v in terms.items() for e, q in enumerate(powers) if q}
        for key, v in terms.items():
            out[(key, 0)] += v
    return dict(out)


def _laplacian(poly: _Poly, d: int) -> _Poly:
    """The Laplacian in ``R^d``: ``Delta(s^j q) = s^j Delta_z q + 2 j (d + 2 j - 2 + 2 deg q) s^(j-1) q``."""
    out: _Poly = defaultdict(float)
    for (alpha, j), c in poly.items():
        for i, a in enumerate(alpha):
            if a >= 2:
                out[(alpha[:i] + (a - 2,) + alpha[i + 1:], j)] += c * a * (a - 1)
        if j:
            out[(alpha, j - 1)] += c * 2 * j * (d + 2 * j - 2 + 2 * sum(alpha))
    return dict(out)


def _add(out: _Poly, poly: _Poly, scale: float, s_power: int) -> None:
    for (alpha, j), c in poly.items():
        out[(alpha, j + s_power)] = out.get((alpha, j + s_power), 0.0) + scale * c


def fischer_parts(poly: _Poly, m: int, d: int) -> dict[int, _Poly]:
    """``{k: H_k}`` with ``P = sum_j s^j H_(m-2j)``, ``H_k`` harmonic homogeneous of degree ``k``, for ``P``
    homogeneous of degree ``m`` (``s`` counting 2): the harmonic part of degree ``m`` is
    ``sum_i (-1)^i s^i Delta^i P / (2^i i! prod_(l=1..i) (d + 2m - 2 - 2l))`` (Axler, Bourdon & Ramey,
    *Harmonic Function Theory*, Ch. 5), and the rest, divided by ``s``, is decomposed the same way."""
    parts: dict[int, _Poly] = {}
    while m >= 0 and any(poly.values()):
        harmonic: _Poly = dict(poly)
        rest: _Poly = {}
        lap, c = poly, 1.0
        for i in range(1, m // 2 + 1):
            lap = _laplacian(lap, d)
            c *= -1.0 / (2 * i * (d + 2 * m - 2 - 2 * i))
            _add(harmonic, lap, c, i)
            _add(rest, lap, -c, i - 1)
        parts[m] = {key: v for key, v in harmonic.items() if v}
        poly, m = rest, m - 2
    return parts


def _sphere_moment(powers: tuple[int, ...], d: int) -> float:
    """``E[prod u_i^(powers_i)]`` for ``u`` uniform on the unit sphere of ``R^d``."""
    if any(p % 2 for p in powers):
        return 0.0
    half = [p // 2 for p in powers]
    num = math.prod(math.prod(range(1, 2 * b, 2)) for b in half)
    return num / math.prod(d + 2 * l for l in range(sum(half)))


def _sphere_inner(a: _Poly, b: _Poly, d: int) -> float:
    """``E[A(u) B(u)]`` over the unit sphere (``s = 1`` there)."""
    return sum(ca * cb * _sphere_moment(tuple(x + y for x, y in zip(ka[0], kb[0])), d)
               for ka, ca in a.items() for kb, cb in b.items())


def harmonic_gram(target: MultiIndexTarget, min_degree: int = 0, d: int | None = None) -> dict[int, np.ndarray]:
    """The target's energy per spherical-harmonic degree, as a function of the radius.

    Writing ``x = r u`` with ``|u| = 1``, the degree-``k`` harmonic part of ``f*(r u)`` is ``sum_m r^m H_k^(m)(u)``
    (``m`` the homogeneous degree it comes from, ``m >= k``, ``m - k`` even; :func:`fischer_parts`).  Returns
    ``{k: g_k}``, ``g_k[m, m'] = E_u[H_k^(m)(u) H_k^(m')(u)]`` over the unit sphere (shape ``(p + 1, p + 1)``), so that
    the degree-``k`` energy at radii ``r, r'`` summed over the ``N(d, k)`` harmonics is ``sum r^m r'^m' g_k[m, m']``
    and ``E[f*^2] = sum_k sum_(m, m') g_k[m, m'] E[|x|^(m + m')]``.  Exact rational arithmetic in floats: only the
    rotation invariance of the law of ``x`` is used (``U`` has orthonormal rows).

    Args:
      target: one concrete target.
      min_degree: Hermite terms of lower degree are left out (2: the constant and linear parts Algorithm 1's label
        pre-processing removes).
      d: the input dimension (the target's by default).
    """
    d = target.d if d is None else d
    poly = _monomials(target, min_degree)
    degree = max((sum(alpha) for alpha, _ in poly), default=0)
    by_degree: dict[int, _Poly] = defaultdict(dict)
    for (alpha, j), c in poly.items():
        by_degree[sum(alpha)][(alpha, j)] = c
    parts = {m: fischer_parts(p, m, d) for m, p in by_degree.items()}
    gram: dict[int, np.ndarray] = {}
    for k in range(degree + 1):
        g = np.zeros((degree + 1, degree + 1))
        for m1, p1 in parts.items():
            for m2, p2 in parts.items():
                if k in p1 and k in p2:
                    g[m1, m2] = _sphere_inner(p1[k], p2[k], d)
        if np.any(g):
            gram[k] = g
    return gram


__all__ = ["energy_by_degree", "fischer_parts", "harmonic_gram", "kernel_plateaus"]
