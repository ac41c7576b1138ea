"""Information and generative exponents of a link, a link target or a polynomial target, by quadrature.

* The **information exponent** (Ben Arous, Gheissari & Jagannath 2021) is the lowest degree ``k >= 1`` with a
  non-zero Hermite coefficient of the link, ``sum_{|alpha| = k} E[g(z) h_alpha(z)]^2 > 0``.
* The **generative exponent** (Damian, Pillaud-Vivien, Lee & Bruna 2024) is the lowest ``k >= 1`` with
  ``sum_{|alpha| = k} E[E[h_alpha(z) | y]^2] > 0``, ``y = g(z)``: the lowest degree a function of the label can see.
  It is at most the information exponent (``E[h_alpha | y]`` has ``E[y E[h_alpha | y]] = c_alpha``); ``He3`` has
  information exponent 3 and generative exponent 1, even links have generative exponent 2 at least.

Method.  ``E[E[h | y]^2] = sup_phi E[phi(y) h(z)]^2 / E[phi(y)^2]`` is the squared norm of the projection of ``h``
onto the functions of ``y``.  It is bounded below by the projection onto the polynomials of the label of degree
``<= label_degree`` (default 8), made orthonormal under the label's law on the grid by Lanczos
(:func:`label_polynomials`); the bound is exact when ``E[h_alpha | y]`` is such a polynomial (every function of a
two-valued label like ``sign``; ``h_2(z) = (y^2 - 1) / sqrt(2)`` for ``y = |z|``) and rises to the true value with
``label_degree`` when polynomials are dense in ``L^2`` of the label's law (bounded labels, or tails like ``relu``'s).

The expectations are sums over a tensor grid (:mod:`reprjax.maths.piecewise_quadrature`): each axis is split at the
kinks and jumps the link declares (``sign``, ``|z|``, ``relu``, ``sign3`` are then integrated exactly) and at extra
symmetric cuts :data:`REFINE_CUTS` (composite rules converge to rounding for links analytic only in a strip, such as
``tanh`` and ``erf``, where one Gauss-Hermite rule of 100 nodes leaves errors near ``1e-1`` in the conditional
energies), with :data:`EXPONENT_MAX_NODES` nodes at most; each ``h_alpha`` is projected in one contraction
(:func:`reprjax.maths.multi_index.contract_tensor_grid`).  The zeros that decide these exponents come from symmetries
(``y`` even in ``z``; sign flips of pairs of coordinates for ``sign3``) which the rules keep exactly, so a zero is
computed to rounding (below ``1e-30``) while the non-zeros of the catalogue are ``>= 2e-2`` (docs/link_exponents.md);
a degree counts as non-zero above ``max(tol, 10 * error)``, ``error`` being the largest change of the energies between
the two grids (``coarse`` and ``fine`` nodes per piece).  A reported generative exponent is an upper bound in general
(a finite family of label functions can miss a dependence) and exact where the label polynomials span the
conditional expectations (all the cases above).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from reprjax import _validate
from reprjax.maths.hermite import MAX_DEGREE, hermite_values_numpy, multi_index_hermite
from reprjax.maths.multi_index import check_term_count, contract_tensor_grid
from reprjax.problem import links as _links
from reprjax.problem.targets import MultiIndexTarget

__all__ = ["Exponents", "exponents", "generative_exponent", "information_exponent", "conditional_energy"]

#: Default threshold on an energy (of unit-norm ``h_alpha``) below which a degree counts as zero.
TOL = 1e-9
#: Default degree of the label polynomials.
LABEL_DEGREE = 8
#: Lanczos on the label stops when a new direction has norm below this (the label takes fewer distinct values).
RANK_RTOL = 1e-9
#: Nodes of the exponents' grids; extra cuts split each axis (composite rules converge fast for links analytic only in
#: a strip, such as ``tanh``): the finest set that fits is used (docs/link_exponents.md).
EXPONENT_MAX_NODES = 300_000
REFINE_CUTS = ((-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0), (-3.0, 0.0, 3.0), ())


@dataclasses.dataclass(frozen=True)
class PolynomialLink:
    """The head ``g(z) = sum_t c_t h_{alpha_t}(z)`` of a :class:`MultiIndexTarget` as a hashable float64 link."""

    alphas: tuple[tuple[int, ...], ...]
    coeffs: tuple[float, ...]
    name: str = "polynomial"

    def __call__(self, z: Any) -> Any:
        return multi_index_hermite(z, self.alphas) @ np.asarray(self.coeffs, np.float64)

    @property
    def information_exponent(self) -> int | None:
        degrees = [sum(a) for a, c in zip(self.alphas, self.coeffs) if c != 0.0 and sum(a) >= 1]
        return min(degrees) if degrees else None


@dataclasses.dataclass(frozen=True)
class Exponents:
    """Both exponents of a link with the energies behind them.

    Attributes:
      information, generative: the exponents (``None``: no degree up to ``searched`` is non-zero).
      hermite_energy: ``sum_{|alpha| = k} c_alpha^2 / E[g^2]``, ``k = 0..searched``.
      conditional_energy: lower bounds of ``sum_{|alpha| = k} E[E[h_alpha | y]^2]``, ``k = 0..searched``.
      searched: the largest degree examined; threshold: the level above which an energy counts as non-zero;
      error: change of ``conditional_energy`` between the two finest grids.
    """

    information: int | None
    generative: int | None
    hermite_energy: np.ndarray
    conditional_energy: np.ndarray
    searched: int
    threshold: float
    error: float


def resolve_link(link_or_target: Any, r: int | None = None, kinks: tuple[float, ...] | None = None,
                 degrees: tuple[int, ...] | None = None) -> tuple[Callable, int]:
    """``(link, r)`` from a :class:`LinkTarget`, a :class:`MultiIndexTarget`, a catalogue name (with ``degrees`` for
    ``hermite_product``) or a jax function of ``z (..., r)`` (``r`` default 1, optional ``kinks``)."""
    if isinstance(link_or_target, _links.LinkTarget):
        return link_or_target.link, link_or_target.r
    if isinstance(link_or_target, MultiIndexTarget):
        coeffs = np.asarray(link_or_target.coeffs, np.float64)
        if coeffs.ndim != 1:
            raise ValueError(f"a target stacked over seeds (coeffs of shape {coeffs.shape}) has no single exponent")
        return PolynomialLink(link_or_target.alphas, tuple(float(c) for c in coeffs)), link_or_target.r
    if isinstance(link_or_target, str):
        return _links.catalogue_link(link_or_target, degrees)
    if callable(link_or_target):
        r = 1 if r is None else _validate.check_int("r", r, low=1)
        if kinks is not None:
            name = getattr(link_or_target, "__name__", "link")
            return _links.DeclaredLink(link_or_target, tuple(kinks), name), r
        return link_or_target, r
    raise ValueError(f"link_or_target must be a LinkTarget, a MultiIndexTarget, a catalogue name or a jax function, "
                     f"got {type(link_or_target).__name__}")


def label_polynomials(y: np.ndarray, sqrt_w: np.ndarray, label_degree: int) -> np.ndarray:
    """``sqrt(w) p_j(y)`` for the polynomials ``p_0 = 1, p_1, ..`` orthonormal under the label's law on the grid
    (weights ``w``), ``j <= label_degree``: Lanczos on ``diag(y)`` from ``sqrt(w)`` with full re-orthogonalisation,
    stopped early when the label takes fewer distinct values (``beta_j < RANK_RTOL``).  Shape ``(N, J + 1)``."""
    centred = y - np.sum(sqrt_w**2 * y)
    sd = float(np.sqrt(np.sum(sqrt_w**2 * centred**2)))
    ys = centred / sd if sd > 0 else np.zeros_like(y)  # standardised: the recurrence's beta_j are O(1) unless the
    # label has run out of distinct values, when they fall to rounding
    columns = [sqrt_w / np.linalg.norm(sqrt_w)]
    for _ in range(label_degree):
        v = ys * columns[-1]
        basis = np.stack(columns, 1)
        for _ in range(2):
            v = v - basis @ (basis.T @ v)
        beta = np.linalg.norm(v)
        if beta < RANK_RTOL:
            break
        columns.append(v / beta)
    return np.stack(columns, 1)


def conditional_energy(link: Callable, r: int, degree: int, order: int,
                       label_degree: int = LABEL_DEGREE) -> np.ndarray:
    """Lower bounds of ``sum_{|alpha| = k} E[E[h_alpha(z) | y]^2]``, ``k = 0..degree``, on one grid (module docstring).

    Args:
      link: jax function of ``z (..., r)`` (its ``kinks`` split the rule).
      r: number of directions.
      degree: largest Hermite degree.
      order: nodes per piece and axis.
      label_degree: largest degree of the label polynomials.
    """
    rules = _links.axis_rules(_links.link_kinks(link, r), order)
    y = _links.link_on_grid(link, rules).reshape(-1)
    sqrt_w = np.sqrt(functools.reduce(np.multiply.outer, [w for _, w in rules]).reshape(-1))
    q = label_polynomials(y, sqrt_w, label_degree)
    shape = tuple(len(n) for n, _ in rules)
    bases = [np.sqrt(w)[:, None] * hermite_values_numpy(n, degree) for n, w in rules]
    alphas, table = contract_tensor_grid(q.reshape(shape + (q.shape[1],)), bases, degree)
    per_alpha = np.sum(table**2, axis=1)
    total = np.asarray([sum(a) for a in alphas])
    return np.asarray([np.sum(per_alpha[total == k]) for k in range(degree + 1)])


def _exponent_grid(kinks: tuple[tuple[float, ...], ...], max_degree: int
                   ) -> tuple[tuple[tuple[float, ...], ...], tuple[int, int], int] | None:
    """``(cuts per axis, (coarse, fine) nodes per piece, degree searched)``: the finest :data:`REFINE_CUTS` and the
    highest degree ``<= max_degree`` with ``degree + 1 <= coarse < fine <= 50`` inside :data:`EXPONENT_MAX_NODES`
    (every degree up to 8 for ``r <= 5``)."""
    for degree in range(max_degree, 0, -1):
        for extra in REFINE_CUTS:
            cuts = tuple(tuple(sorted(set(k) | set(extra))) for k in kinks)
            pieces = [len(c) + 1 for c in cuts]
            fine = max((m for m in range(1, 51) if math.prod(p * m for p in pieces) <= EXPONENT_MAX_NODES), default=0)
            coarse = max(degree + 1, fine // 2)
            if coarse < fine:
                return cuts, (coarse, fine), degree
    return None


def exponents(link_or_target: Any, r: int | None = None, *, kinks: tuple[float, ...] | None = None,
              degrees: tuple[int, ...] | None = None, max_degree: int = 8, tol: float = TOL,
              label_degree: int = LABEL_DEGREE) -> Exponents:
    """Information and generative exponents of a link with their energies (module docstring).

    Args:
      link_or_target: a :class:`reprjax.problem.links.LinkTarget`, a :class:`reprjax.problem.targets.MultiIndexTarget`
        (not stacked over seeds), a catalogue link name, or a jax function of ``z (..., r)``.
      r: directions of a jax function (default 1); ignored otherwise.
      kinks: kinks or jumps of a jax function (split the quadrature; exact for piecewise polynomials).
      degrees: the degrees of ``"hermite_product"`` when ``link_or_target`` names it.
      max_degree: largest degree searched (``<= MAX_DEGREE``); lowered to what the grid resolves for large ``r``.
      tol: energies at or below ``max(tol, 10 * error)`` count as zero.
      label_degree: largest degree of the label polynomials.

    Returns:
      An :class:`Exponents`.
    """
    _validate.check_int("max_degree", max_degree, low=1, high=MAX_DEGREE)
    _validate.check_int("label_degree", label_degree, low=1, high=32)
    _validate.check_number("tol", tol, low=0.0)
    link, r = resolve_link(link_or_target, r, kinks, degrees)
    name = _links.link_name(link)
    grid = _exponent_grid(_links.link_kinks(link, r), max_degree)
    if grid is None:
        raise ValueError(f"link {name!r} on r = {r} directions: no grid of at most EXPONENT_MAX_NODES = "
                         f"{EXPONENT_MAX_NODES:,} nodes resolves Hermite degree 1")
    cut, orders, searched = grid
    check_term_count(f"exponents of link {name!r}", r, searched)
    cut_link = _links.DeclaredLink(link, cut, name)
    energies = [conditional_energy(cut_link, r, searched, o, label_degree) for o in orders]
    error = float(np.max(np.abs(energies[-1] - energies[0])))
    threshold = max(tol, 10.0 * error)
    cond = energies[-1]
    generative = next((k for k in range(1, searched + 1) if cond[k] > threshold), None)
    expansion = _links.hermite_expansion(link, r, searched)
    hermite = expansion.energy_by_degree() / expansion.second_moment if expansion.second_moment > 0 else \
        np.zeros(searched + 1)
    if hasattr(link, "information_exponent"):
        information = link.information_exponent
        information = information if information is not None and information <= searched else None
    else:
        information = expansion.information_exponent()
    return Exponents(information=information, generative=generative, hermite_energy=hermite,
                     conditional_energy=cond, searched=searched, threshold=threshold, error=error)


def generative_exponent(link_or_target: Any, r: int | None = None, *, kinks: tuple[float, ...] | None = None,
                        degrees: tuple[int, ...] | None = None, max_degree: int = 8, tol: float = TOL) -> int | None:
    """The generative exponent of a link (Damian, Pillaud-Vivien, Lee & Bruna 2024): the lowest ``k >= 1`` with
    ``E[E[h_k(z) | y]^2] > 0``; ``None`` when no degree up to ``max_degree`` has it.  Arguments as
    :func:`exponents`; a ``ValueError`` when the grid cannot reach ``max_degree`` before finding it (``r >= 6``)."""
    e = exponents(link_or_target, r, kinks=kinks, degrees=degrees, max_degree=max_degree, tol=tol)
    if e.generative is None and e.searched < max_degree:
        name = _links.link_name(resolve_link(link_or_target, r, kinks, degrees)[0])
        raise ValueError(f"link {name!r}: the exponents' grid ({EXPONENT_MAX_NODES:,} nodes) resolves degrees up to "
                         f"{e.searched} only, where no conditional energy is non-zero; max_degree = {max_degree} "
                         f"cannot be searched")
    return e.generative


def information_exponent(link_or_target: Any, r: int | None = None, *, kinks: tuple[float, ...] | None = None,
                         degrees: tuple[int, ...] | None = None, max_degree: int = 8) -> int | None:
    """The information exponent (lowest degree ``k >= 1`` with a non-zero Hermite coefficient); ``None`` when no
    degree up to ``max_degree`` has one.  Exact for polynomial targets and Hermite products, else by quadrature."""
    link, r = resolve_link(link_or_target, r, kinks, degrees)
    if hasattr(link, "information_exponent"):
        k = link.information_exponent
        return k if k is not None and k <= max_degree else None
    return _links.hermite_expansion(link, r, max_degree).information_exponent()
