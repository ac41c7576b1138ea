"""Targets with any link ``f*(x) = g(U x)``, ``g`` a jax function, and its Hermite structure by quadrature.

:class:`LinkTarget` is a drop-in for :class:`reprjax.problem.targets.MultiIndexTarget` where the data, the metrics and
the methods use one (``d``, ``r``, ``U``, ``target(x)``, ``second_moment()``, ``normalise()``), for links that are not
polynomials: the catalogue :data:`LINKS` holds ``tanh``, ``relu``, ``erf``, ``abs``, ``sign`` single-index links,
``sign3 = sign(z1 z2 z3)``, and :class:`HermiteProduct` (a product of normalised Hermite terms, known exactly).

Hermite coefficients ``c_alpha = E[g(z) h_alpha(z)]``, ``E[g^2]``, ``H = E[hess g]`` (from the degree-2
coefficients, docs/setting.md "Inputs, targets and labels") and the information exponent come from a tensor rule
evaluated in float64: Gauss-Hermite on each axis, or, on an axis where the link declares kinks or jumps
(``link.kinks``, see :class:`DeclaredLink`), the Gaussian rule split at them
(:func:`reprjax.maths.piecewise_quadrature.split_gaussian_rule`), exact for links that are polynomial between their
kinks (``relu``, ``|z|``, ``sign``, ``sign3``: coefficients to rounding).  The order is doubled (:data:`ORDERS` nodes
per axis, as many as :data:`MAX_NODES` allows) until two successive orders agree to ``tol``; the last change is the
error estimate.  The contraction keeps only multi-indices of degree ``<= degree``
(:func:`reprjax.maths.multi_index.contract_tensor_grid`), so the work follows the grid and the output.

A link is checked when a target is built from it (:func:`hermite_expansion` raises a one-line ``ValueError`` naming
the link): its values on the grid are finite, ``E[g^2]`` is positive and settles between the last two orders
(relative change below :data:`SECOND_MOMENT_RTOL`; an infinite second moment such as ``exp(z^2)`` does not), and the
grid has enough nodes per axis to resolve the requested degree.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.maths.hermite import MAX_DEGREE, hermite_values, hermite_values_numpy
from reprjax.maths.multi_index import all_multi_indices, check_term_count, contract_tensor_grid
from reprjax.maths.piecewise_quadrature import split_gaussian_rule
from reprjax.problem.targets import MultiIndexTarget, random_orthonormal

Link = Callable[[Float[Array, "*batch r"]], Float[Array, "*batch"]]

#: Nodes per axis tried in turn (split among an axis's pieces when the link has kinks).
ORDERS = (25, 50, 100)
#: Largest grid the quadrature evaluates (nodes over all axes).
MAX_NODES = 2_000_000
#: ``E[g^2]`` must change by less than this (relative) between the last two orders, else it is taken as infinite.
SECOND_MOMENT_RTOL = 1e-2


@dataclasses.dataclass(frozen=True)
class DeclaredLink:
    """A user's link with its name and its kinks or jumps: ``kinks`` on every axis, or one tuple per axis."""

    fn: Link
    kinks: tuple[float, ...] | tuple[tuple[float, ...], ...] = ()
    name: str = "link"

    def __call__(self, z: Array) -> Array:
        return self.fn(z)


def link_name(link: Link) -> str:
    """The name a message uses for ``link``."""
    return str(getattr(link, "name", None) or getattr(link, "__name__", None) or repr(link))


def link_kinks(link: Link, r: int) -> tuple[tuple[float, ...], ...]:
    """The kinks of ``link`` on each of its ``r`` axes (``link.kinks``; none when it declares none)."""
    kinks = tuple(getattr(link, "kinks", ()) or ())
    if kinks and isinstance(kinks[0], (tuple, list)):
        if len(kinks) != r:
            raise ValueError(f"link {link_name(link)!r} declares kinks for {len(kinks)} axes but r = {r}")
        return tuple(tuple(float(k) for k in axis) for axis in kinks)
    return (tuple(float(k) for k in kinks),) * r


def grid_orders(kinks: tuple[tuple[float, ...], ...], min_order: int = 2) -> list[int]:
    """Nodes per piece for each order tried: :data:`ORDERS` split among an axis's pieces, within :data:`MAX_NODES`
    (the two largest that fit when none of :data:`ORDERS` does).  Empty when even ``min_order`` does not fit."""
    pieces = [len(set(k)) + 1 for k in kinks]

    def nodes(per_piece: int) -> float:
        return math.prod(p * per_piece for p in pieces)

    top = max(pieces)
    orders = [o // top for o in ORDERS if o // top >= 1 and nodes(o // top) <= MAX_NODES]
    if len(orders) < 2:
        fit = max((m for m in range(1, ORDERS[0] + 1) if nodes(m) <= MAX_NODES), default=0)
        orders = sorted({max(1, fit // 2), fit}) if fit else []
    return [o for o in orders if o >= min_order]


def axis_rules(kinks: tuple[tuple[float, ...], ...], per_piece: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 1-d rule of each axis: ``per_piece`` nodes on each piece between its kinks."""
    return [split_gaussian_rule(k, per_piece) for k in kinks]


def link_on_grid(link: Link, rules: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``link`` on the tensor grid of ``rules`` in float64, shape ``(n_1, ..., n_r)``; ``ValueError`` naming the
    link and a node where it is not finite."""
    mesh = np.stack(np.meshgrid(*[n for n, _ in rules], indexing="ij"), axis=-1)
    flat = mesh.reshape(-1, len(rules))
    bucket = max(1024, 1 << (flat.shape[0] - 1).bit_length())  # padded: grids of similar size share one compile
    with jax.ensure_compile_time_eval(), jax.enable_x64(True):
        padded = jnp.asarray(np.pad(flat, ((0, bucket - flat.shape[0]), (0, 0))), jnp.float64)
        values = np.asarray(jax.jit(link)(padded), np.float64)
    if values.shape != (bucket,):
        raise ValueError(f"link {link_name(link)!r} maps z of shape (n, {len(rules)}) to shape {values.shape}, "
                         f"expected ({bucket},) (one value per point)")
    values = values[: flat.shape[0]].reshape(mesh.shape[:-1])
    bad = ~np.isfinite(values)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise ValueError(f"link {link_name(link)!r} is not finite on the quadrature grid: "
                         f"{values[tuple(where)]} at z = {np.round(mesh[tuple(where)], 4).tolist()}")
    return values


@dataclasses.dataclass(frozen=True)
class HermiteExpansion:
    """Hermite structure of a link by quadrature (host-side, float64).

    Attributes:
      alphas: multi-indices of degree ``0..degree``; coeffs: ``c_alpha``; second_moment: ``E[g^2]``;
      order: nodes per piece and axis used (0 when exact); error: the largest change of any reported number between
      the last two orders (the error estimate; 0 when exact).
    """

    alphas: tuple[tuple[int, ...], ...]
    coeffs: np.ndarray
    second_moment: float
    order: int
    error: float

    def energy_by_degree(self) -> np.ndarray:
        """``sum_{|alpha| = k} c_alpha^2`` for ``k = 0..degree``."""
        deg = np.asarray([sum(a) for a in self.alphas])
        return np.asarray([np.sum(self.coeffs[deg == k] ** 2) for k in range(int(deg.max()) + 1)])

    def information_exponent(self, threshold: float | None = None) -> int | None:
        """Lowest degree ``k >= 1`` whose energy exceeds ``threshold`` (default: ``10 * error^2 + 1e-12``, above
        the quadrature's noise); ``None`` when no degree up to the computed one does."""
        floor = 10.0 * self.error**2 + 1e-12 if threshold is None else threshold
        energy = self.energy_by_degree()
        return next((k for k in range(1, len(energy)) if energy[k] > floor), None)

    def latent_hessian(self) -> np.ndarray:
        """``H_r = E[hess g]``: ``(H_r)_ii = sqrt(2) c_{2 e_i}``, ``(H_r)_ij = c_{e_i + e_j}`` (Stein's lemma)."""
        r = len(self.alphas[0])
        h = np.zeros((r, r))
        for alpha, c in zip(self.alphas, self.coeffs):
            if sum(alpha) != 2:
                continue
            nz = [i for i, a in enumerate(alpha) if a]
            if len(nz) == 1:
                h[nz[0], nz[0]] = math.sqrt(2.0) * c
            else:
                h[nz[0], nz[1]] = h[nz[1], nz[0]] = c
        return h


def _alphas(r: int, degree: int) -> tuple[tuple[int, ...], ...]:
    return tuple(a for k in range(degree + 1) for a in all_multi_indices(r, k))


def _quadrature(link: Link, kinks: tuple[tuple[float, ...], ...], degree: int, order: int) -> tuple[np.ndarray, float]:
    rules = axis_rules(kinks, order)
    values = link_on_grid(link, rules)
    prefixes, table = contract_tensor_grid(values, [w[:, None] * hermite_values_numpy(n, degree) for n, w in rules],
                                           degree)
    with np.errstate(over="ignore"):  # an overflow is reported below as an infinite E[g^2]
        second = values**2
    for _, w in rules:
        second = np.tensordot(w, second, axes=([0], [0]))
    index = dict(zip(prefixes, table))
    return np.asarray([index[a] for a in _alphas(len(kinks), degree)]), float(second)


@functools.lru_cache(maxsize=128)
def hermite_expansion(link: Link, r: int, degree: int = 6, tol: float = 1e-10) -> HermiteExpansion:
    """Hermite coefficients up to ``degree`` and ``E[g^2]`` of ``link`` by adaptive tensor quadrature, checked.

    Exact (no quadrature) for a link with an ``exact_expansion(r, degree)`` method (:class:`HermiteProduct`).

    Args:
      link: jax function of ``z (..., r)`` (hashable: cached per link); its ``kinks`` attribute, if any, splits the
        rule (:func:`link_kinks`).
      r: number of directions.
      degree: largest total degree of the coefficients (``<= MAX_DEGREE``).
      tol: stop doubling the order once every number changes by less than this.

    Returns:
      A :class:`HermiteExpansion` with its order and error estimate.

    Raises:
      ValueError: naming the link, when it is not finite on the grid or has an ``E[g^2]`` that does not settle,
        when the grid cannot resolve ``degree``, or when there are too many multi-indices.
    """
    _validate.check_int("r", r, low=1)
    _validate.check_int("degree", degree, low=0, high=MAX_DEGREE)
    name = link_name(link)
    check_term_count(f"Hermite expansion of link {name!r}", r, degree)
    if hasattr(link, "exact_expansion"):
        return link.exact_expansion(r, degree)
    kinks = link_kinks(link, r)
    orders = grid_orders(kinks, min_order=max(degree + 1, 2))
    if not orders:
        raise ValueError(f"link {name!r} on r = {r} directions: a grid of at most MAX_NODES = {MAX_NODES:,} nodes has "
                         f"too few per direction to resolve Hermite degree {degree} (needs {max(degree + 1, 2)})")
    previous, error, seconds = None, math.inf, []
    for order in orders:
        coeffs, second = _quadrature(link, kinks, degree, order)
        seconds.append(second)
        flat = np.append(coeffs, second)
        if previous is not None:
            error = float(np.max(np.abs(flat - previous)))
            if error < tol:
                break
        previous = flat
    if not math.isfinite(second):
        raise ValueError(f"link {name!r} has E[g^2] = {second:.3g} on the quadrature grid: it must be finite")
    if len(seconds) > 1 and abs(seconds[-1] - seconds[-2]) > SECOND_MOMENT_RTOL * second:
        raise ValueError(f"link {name!r}: E[g^2] does not settle ({seconds[-2]:.4g} with {orders[-2]} nodes per "
                         f"piece, {seconds[-1]:.4g} with {order}): its second moment looks infinite")
    return HermiteExpansion(alphas=_alphas(r, degree), coeffs=coeffs, second_moment=second, order=order, error=error)


@struct.dataclass
class LinkTarget:
    """``f*(x) = scale * link(U x)``; ``U (r, d)`` a leaf, the link and its scale static (module docstring).

    Building one checks the link (:func:`hermite_expansion` at degree 0, cached per link and ``r``, and
    ``E[g^2] > 0``).
    """

    U: Float[Array, "r d"]
    link: Link = struct.field(pytree_node=False)
    name: str = struct.field(pytree_node=False, default="link")
    scale: float = struct.field(pytree_node=False, default=1.0)

    def __post_init__(self) -> None:
        if len(self.U.shape) < 2:
            raise ValueError(f"U must be an (r, d) array, got shape {self.U.shape}")
        second = hermite_expansion(self.link, self.r, 0).second_moment
        if not second > 0.0:
            raise ValueError(f"link {link_name(self.link)!r} has E[g^2] = {second:.3g}: a target needs a positive "
                             f"second moment (a link that is 0 everywhere cannot be normalised)")

    @property
    def r(self) -> int:
        return int(self.U.shape[-2])

    @property
    def d(self) -> int:
        return int(self.U.shape[-1])

    def g(self, z: Float[Array, "*batch r"]) -> Float[Array, "*batch"]:
        return self.scale * self.link(z)

    def __call__(self, x: Float[Array, "*batch d"]) -> Float[Array, "*batch"]:
        """``f*(x) = scale * link(U x)``, batched over leading axes of ``x``."""
        if x.shape[-1] != self.d:
            raise ValueError(f"x has dimension {x.shape[-1]} but the target has d = {self.d}")
        return self.g(x @ self.U.T)

    def expansion(self, degree: int = 6, tol: float = 1e-10) -> HermiteExpansion:
        """The link's :class:`HermiteExpansion` with this target's scale applied."""
        e = hermite_expansion(self.link, self.r, degree, tol)
        return dataclasses.replace(e, coeffs=self.scale * e.coeffs, second_moment=self.scale**2 * e.second_moment,
                                   error=max(self.scale, self.scale**2) * e.error)

    def second_moment(self) -> Float[Array, ""]:
        """``E[f*^2]`` by quadrature (a constant of the link)."""
        return jnp.asarray(self.expansion(0).second_moment, jnp.float32)

    def normalise(self) -> "LinkTarget":
        """Rescale so that ``E[f*^2] = 1``."""
        return self.replace(scale=self.scale / math.sqrt(self.expansion(0).second_moment))

    @property
    def information_exponent(self) -> int | None:
        """Lowest degree ``k >= 1`` with Hermite energy above the quadrature's noise: exact for a link that knows it
        (:class:`HermiteProduct`), else searched up to degree 6 (or the highest degree the grid resolves)."""
        if hasattr(self.link, "information_exponent"):
            return self.link.information_exponent
        degree = 6  # lowered until two orders resolve it (the error estimate needs both)
        while degree > 1 and len(grid_orders(link_kinks(self.link, self.r), min_order=degree + 1)) < 2:
            degree -= 1
        return self.expansion(degree).information_exponent()

    def describe(self, degree: int = 4) -> str:
        """A human-readable summary: energy by degree, ``E[f*^2]``, ``H``, information exponent, quadrature order."""
        e = self.expansion(degree)
        return (f"LinkTarget({self.name}, d={self.d}, r={self.r}, information exponent={self.information_exponent})\n"
                f"  energy by degree 0..{degree}: {np.array2string(e.energy_by_degree(), precision=4)}\n"
                f"  E[f*^2] = {e.second_moment:.6f}   H_r = {np.array2string(e.latent_hessian(), precision=4)}\n"
                f"  quadrature: {e.order} nodes per piece and axis, error estimate {e.error:.2e}")

    def polynomial(self, degree: int = 6) -> MultiIndexTarget:
        """The Hermite truncation of ``f*`` up to ``degree`` as a :class:`MultiIndexTarget` on the same ``U``."""
        e = self.expansion(degree)
        return MultiIndexTarget(U=self.U, coeffs=jnp.asarray(e.coeffs, jnp.float32), alphas=e.alphas)


@dataclasses.dataclass(frozen=True)
class HermiteProduct:
    """The link ``prod_i h_{k_i}(z_i)`` (normalised Hermite polynomials), hashable by its degrees; its Hermite
    expansion is itself (one coefficient 1), so no quadrature is needed."""

    degrees: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"hermite_product{self.degrees}"

    @property
    def information_exponent(self) -> int | None:
        return sum(self.degrees) or None

    def __call__(self, z: Array) -> Array:
        table = hermite_values(z, max(self.degrees))
        return jnp.prod(jnp.stack([table[..., i, k] for i, k in enumerate(self.degrees)], -1), -1)

    def exact_expansion(self, r: int, degree: int) -> HermiteExpansion:
        """``c_alpha = 1{alpha = degrees}`` for ``|alpha| <= degree``, ``E[g^2] = 1``."""
        if r != len(self.degrees):
            raise ValueError(f"link {self.name!r} has r = {len(self.degrees)} directions, got r = {r}")
        alphas = _alphas(r, degree)
        coeffs = np.asarray([float(a == self.degrees) for a in alphas])
        return HermiteExpansion(alphas=alphas, coeffs=coeffs, second_moment=1.0, order=0, error=0.0)


def _tanh(z: Array) -> Array:
    return jnp.tanh(z[..., 0])


def _relu(z: Array) -> Array:
    return jax.nn.relu(z[..., 0])


def _erf(z: Array) -> Array:
    return jax.scipy.special.erf(z[..., 0])


def _abs(z: Array) -> Array:
    return jnp.abs(z[..., 0])


def _sign(z: Array) -> Array:
    return jnp.sign(z[..., 0])


def _sign3(z: Array) -> Array:
    return jnp.sign(z[..., 0] * z[..., 1] * z[..., 2])


#: name -> (link, r); links with kinks or jumps declare them (split quadrature, exact coefficients)
LINKS: dict[str, tuple[Link, int]] = {
    "tanh": (DeclaredLink(_tanh, (), "tanh"), 1),
    "relu": (DeclaredLink(_relu, (0.0,), "relu"), 1),
    "erf": (DeclaredLink(_erf, (), "erf"), 1),
    "abs": (DeclaredLink(_abs, (0.0,), "abs"), 1),
    "sign": (DeclaredLink(_sign, (0.0,), "sign"), 1),
    "sign3": (DeclaredLink(_sign3, (0.0,), "sign3"), 3),
}


def catalogue_link(link: str, degrees: tuple[int, ...] | None = None) -> tuple[Link, int]:
    """``(link, r)`` for a catalogue name in :data:`LINKS` or ``"hermite_product"`` with ``degrees``."""
    if link == "hermite_product":
        if not degrees:
            raise ValueError("degrees must be a non-empty tuple of Hermite degrees for link 'hermite_product'")
        for k in degrees:
            _validate.check_int("degrees", k, low=0, high=MAX_DEGREE)
        return HermiteProduct(tuple(int(k) for k in degrees)), len(degrees)
    _validate.check_choice("link", link, tuple(LINKS) + ("hermite_product",))
    return LINKS[link]


def link_target(key: PRNGKeyArray, d: int, link: str = "tanh", degrees: tuple[int, ...] | None = None,
                normalise: bool = True) -> LinkTarget:
    """A catalogue target with a random ``U``: ``link`` in :data:`LINKS` or ``"hermite_product"`` with ``degrees``.

    Args:
      key: PRNG key for ``U``.
      d: input dimension.
      link: catalogue name.
      degrees: the ``k_i`` of ``hermite_product`` (its ``r`` is their number).
      normalise: rescale to ``E[f*^2] = 1`` (docs/setting.md, "Inputs, targets and labels").
    """
    fn, r = catalogue_link(link, degrees)
    _validate.check_int("d", d, low=r)
    target = LinkTarget(U=random_orthonormal(key, r, d), link=fn, name=link)
    return target.normalise() if normalise else target
