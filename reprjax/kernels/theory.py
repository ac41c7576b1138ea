"""What kernel ridge can learn at a given sample count: the degree-``k`` plateaus of a rotation-invariant kernel.

For a rotation-invariant kernel (the infinite-width NTK and NNGP included) and ``d^k << n << d^(k+1)``, kernel ridge
learns the projection of ``f*`` on polynomials of degree ``<= k`` and nothing above (Ghorbani, Mei, Misiakiewicz &
Montanari 2021; Damian, Lee & Soltanolkotabi 2022, Section 3, the kernel lower bound), so its normalised test error
plateaus at the share of ``E[f*^2]`` carried by degrees above ``k``.  For the paper target
``[h2(z1) + h2(z2) + h4(z1) + h4(z2)] / 2`` that is 1 below ``n ~ d^2``, 0.5 between ``d^2`` and ``d^4`` and 0 past
``d^4``.  The Hermite features ``h_alpha(Ux)`` are orthonormal, so the energy of degree ``k`` is the sum of the
squared coefficients with ``|alpha| = k``.
"""

from __future__ import annotations

import numpy as np

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


__all__ = ["energy_by_degree", "kernel_plateaus"]
