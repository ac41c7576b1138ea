"""Gaussian quadrature split at a function's kinks and jumps: rules exact for piecewise polynomials.

A Gauss-Hermite rule integrates ``F(z) phi(z)`` exactly when ``F`` is a polynomial, but converges like ``1 / order``
when ``F`` has a kink or a jump (``relu``, ``|z|``, ``sign``).  Splitting the line at those points and using, on each
piece ``[a, b]``, the Gauss rule of the standard normal density *restricted to that piece* makes the integral of any
function that is polynomial on each piece exact again (degree ``<= 2 order - 1`` per piece).

The rule of a piece comes from its Jacobi matrix (Golub & Welsch 1969), the three-term recurrence of the
polynomials orthogonal under ``phi`` on ``[a, b]``; the recurrence is computed by the discretised Stieltjes procedure
in its Lanczos form (Gautschi, *Orthogonal Polynomials: Computation and Approximation*, 2004, sections 2.2.3-2.2.4):
``phi`` on the piece is first discretised by composite Gauss-Legendre panels (``PANEL_WIDTH`` wide,
``PANEL_NODES`` nodes each), fine enough that its moments up to degree ``2 order - 1`` are exact to rounding, and the
Lanczos iteration (with full re-orthogonalisation) reduces that discrete measure to ``order`` nodes.  Infinite ends
are truncated at ``+-(sqrt(4 order) + TAIL_MARGIN)``, where ``z^(2 order) phi(z)`` has fallen by more than
``e^-100`` from its peak.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import special

from reprjax.maths.hermite import gauss_hermite_rule

__all__ = ["gaussian_piece_rule", "split_gaussian_rule"]

#: Width of a Gauss-Legendre panel of the discretised measure, and its number of nodes.
PANEL_WIDTH = 0.5
PANEL_NODES = 24
#: Extra distance beyond ``sqrt(4 order)`` at which an infinite end is truncated.
TAIL_MARGIN = 12.0
#: Largest number of nodes per piece.
MAX_PIECE_ORDER = 100


def _normal_mass(a: float, b: float) -> float:
    """``P(a <= z <= b)`` for ``z ~ N(0, 1)``, accurate in both tails."""
    if a >= 0:
        return 0.5 * (special.erfc(a / math.sqrt(2)) - special.erfc(b / math.sqrt(2)))
    if b <= 0:
        return 0.5 * (special.erfc(-b / math.sqrt(2)) - special.erfc(-a / math.sqrt(2)))
    return 1.0 - 0.5 * special.erfc(-a / math.sqrt(2)) - 0.5 * special.erfc(b / math.sqrt(2))


def _discretised_measure(a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights of ``phi(z) dz`` on the finite interval ``[a, b]``."""
    panels = max(1, math.ceil((b - a) / PANEL_WIDTH))
    edges = np.linspace(a, b, panels + 1)
    x, w = np.polynomial.legendre.leggauss(PANEL_NODES)
    half = 0.5 * np.diff(edges)[:, None]
    nodes = (0.5 * (edges[:-1] + edges[1:]))[:, None] + half * x[None, :]
    weights = half * w[None, :] * np.exp(-0.5 * nodes**2) / math.sqrt(2.0 * math.pi)
    return nodes.reshape(-1), weights.reshape(-1)


@functools.lru_cache(maxsize=256)
def gaussian_piece_rule(a: float, b: float, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule of the standard normal density restricted to ``[a, b]`` (``a`` may be ``-inf``, ``b`` ``+inf``).

    ``sum_i w_i F(z_i) = E[F(z) 1{a <= z <= b}]`` for polynomials ``F`` of degree ``<= 2 order - 1`` (to rounding);
    the weights sum to ``P(a <= z <= b)``.  Built as in the module docstring.

    Args:
      a: left end; b: right end (``a < b``).
      order: number of nodes, ``1..MAX_PIECE_ORDER``.

    Returns:
      ``(nodes, weights)``, float64 numpy arrays of length ``order``, nodes increasing inside ``(a, b)``.
    """
    if not 1 <= order <= MAX_PIECE_ORDER:
        raise ValueError(f"order must be in [1, {MAX_PIECE_ORDER}], got {order}")
    if not a < b:
        raise ValueError(f"the piece [a, b] must have a < b, got [{a}, {b}]")
    if a + b < 0:  # built from its mirror image, so that kinks placed symmetrically give an exactly symmetric rule
        nodes, weights = gaussian_piece_rule(-b, -a, order)
        return -nodes[::-1], weights[::-1]
    reach = math.sqrt(4.0 * order) + TAIL_MARGIN
    lo, hi = max(a, -reach), min(b, reach)
    mass = _normal_mass(a, b)
    if not (lo < hi and mass > 0.0):
        raise ValueError(f"the piece [{a}, {b}] carries no Gaussian mass in float64")
    x, w = _discretised_measure(lo, hi)
    # Lanczos on diag(x) from sqrt(w): the Jacobi matrix of the discrete measure (full re-orthogonalisation)
    q = np.zeros((x.size, order))
    alpha, beta = np.zeros(order), np.zeros(order)
    v = np.sqrt(w / np.sum(w))
    for j in range(order):
        q[:, j] = v
        u = x * v
        alpha[j] = v @ u
        u = u - alpha[j] * v - (beta[j - 1] * q[:, j - 1] if j else 0.0)
        for _ in range(2):
            u = u - q[:, : j + 1] @ (q[:, : j + 1].T @ u)
        if j + 1 < order:
            beta[j] = np.linalg.norm(u)
            v = u / beta[j]
    nodes = np.linalg.eigvalsh(np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1))
    # Christoffel numbers 1 / sum_k p_k(x_i)^2 (orthonormal p_k): relative accuracy even for the tiny tail weights,
    # which an eigenvector's first components only give to an absolute eps
    p_prev, p, total = np.zeros_like(nodes), np.ones_like(nodes), np.ones_like(nodes)
    for k in range(order - 1):
        p_prev, p = p, ((nodes - alpha[k]) * p - (beta[k - 1] * p_prev if k else 0.0)) / beta[k]
        total += p**2
    return nodes, mass / total


def split_gaussian_rule(kinks: Sequence[float], order: int) -> tuple[np.ndarray, np.ndarray]:
    """A rule for ``N(0, 1)`` split at ``kinks``: ``order`` nodes on each piece between successive kinks.

    Exact (to rounding) for functions that are polynomials of degree ``<= 2 order - 1`` on each piece; with no kinks
    it is the Gauss-Hermite rule (:func:`reprjax.maths.hermite.gauss_hermite_rule`).

    Args:
      kinks: points where the integrand has a kink or a jump (finite, any order, repeats ignored).
      order: nodes per piece.

    Returns:
      ``(nodes, weights)``, float64, ``order * (len(set(kinks)) + 1)`` nodes; the weights sum to 1.
    """
    cuts = sorted({float(k) for k in kinks})
    if any(not math.isfinite(c) for c in cuts):
        raise ValueError(f"kinks must be finite numbers, got {tuple(kinks)}")
    if not cuts:
        return gauss_hermite_rule(order)
    ends = [-math.inf, *cuts, math.inf]
    pieces = [gaussian_piece_rule(lo, hi, order) for lo, hi in zip(ends[:-1], ends[1:])]
    return np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])
