"""Multi-index targets ``f*(x) = g(U x)`` with ``g`` written in normalised Hermite features.

Representation (docs/setting.md, "Inputs, targets and labels"): ``U`` is ``r x d`` with orthonormal rows and

    g(z) = sum_t c_t h_{alpha_t}(z),      h_alpha(z) = prod_i h_{alpha_i}(z_i),

a list of ``T`` distinct multi-indices ``alpha_t`` (static, so jit specialises on the structure) with coefficients
``c_t`` (an array leaf, so coefficients and ``U`` can be traced, vmapped over seeds or differentiated).  Because the
``h_alpha`` are orthonormal under ``N(0, I_r)`` and ``U x ~ N(0, I_r)`` for ``x ~ N(0, I_d)``:

* ``E[f*] = c_0`` (the coefficient of ``alpha = 0``) and ``E[f*^2] = sum_t c_t^2``;
* ``H = E[hess f*] = U^T H_r U`` with ``(H_r)_ii = sqrt(2) c_{2 e_i}`` and ``(H_r)_ij = c_{e_i + e_j}`` (Stein's
  lemma: ``E[hess g] = E[g(z)(z z^T - I)]``), so ``H`` depends only on the degree-2 coefficients.

The catalogue at the end builds the targets the paper and the literature use, each from a PRNG key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.maths import lapack as _lapack
from reprjax.maths.hermite import MAX_DEGREE, multi_index_hermite
from reprjax.maths.multi_index import MAX_TERMS, all_multi_indices, count_multi_indices

#: Tolerance on ``||U U^T - I||_max`` for the orthonormality check (float32 QR reaches ~1e-6).
ORTHONORMAL_TOL = 1e-4

Alphas = tuple[tuple[int, ...], ...]


def random_orthonormal(key: PRNGKeyArray, r: int, d: int) -> Float[Array, "r d"]:
    """A uniformly random ``r x d`` matrix with orthonormal rows: QR of a Gaussian ``d x r`` matrix, signs fixed
    so that ``R`` has a positive diagonal (this makes the law exactly Haar)."""
    _validate.check_int("d", d, low=1)
    _validate.check_int("r", r, low=1, high=d)
    gauss = jax.random.normal(key, (d, r), dtype=jnp.float32)
    q, rr = _lapack.qr(gauss)
    signs = jnp.where(jnp.diagonal(rr) < 0, -1.0, 1.0).astype(q.dtype)
    return (q * signs[None, :]).T


@struct.dataclass
class MultiIndexTarget:
    """``f*(x) = sum_t coeffs[t] h_{alphas[t]}(U x)``; see the module docstring.

    Attributes:
      U: ``(r, d)`` with orthonormal rows.
      coeffs: ``(T,)`` Hermite coefficients of ``g``.
      alphas: ``T`` distinct multi-indices of length ``r`` (static).
    """

    U: Float[Array, "r d"]
    coeffs: Float[Array, " T"]
    alphas: Alphas = struct.field(pytree_node=False)

    def __post_init__(self) -> None:
        alphas = self.alphas
        if not isinstance(alphas, tuple) or len(alphas) == 0:
            raise ValueError(f"alphas must be a non-empty tuple of multi-indices, got {alphas!r}")
        r = len(alphas[0])
        for alpha in alphas:
            if len(alpha) != r or any(
                isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in alpha
            ):
                raise ValueError(f"every multi-index in alphas must hold {r} integers, got {alpha!r}")
            if min(alpha) < 0 or max(alpha) > MAX_DEGREE:
                raise ValueError(
                    f"multi-index entries must be in [0, {MAX_DEGREE}] (the supported degree), got {alpha}"
                )
            if sum(alpha) > MAX_DEGREE:
                raise ValueError(f"total degree |alpha| must be <= {MAX_DEGREE}, got {alpha} (|alpha| = {sum(alpha)})")
        if len(set(alphas)) != len(alphas):
            raise ValueError("alphas must be distinct; merge repeated multi-indices with from_terms")
        # leading axes are allowed: a target stacked over seeds (the output of jax.vmap) is checked per seed
        if _validate.is_concrete(self.U):
            U = np.asarray(self.U)
            if U.ndim < 2:
                raise ValueError(f"U must be an (r, d) array, got shape {U.shape}")
            ur, ud = U.shape[-2:]
            if ur != r:
                raise ValueError(f"U has r = {ur} rows but the multi-indices have length {r}")
            if not 1 <= ur <= ud:
                raise ValueError(f"r must be in [1, d] = [1, {ud}], got r = {ur}")
            _validate.check_finite_array("U", U)
            U64 = U.astype(np.float64)
            gram = U64 @ np.swapaxes(U64, -1, -2)
            err = float(np.max(np.abs(gram - np.eye(ur))))
            if err > ORTHONORMAL_TOL:
                raise ValueError(
                    f"U must have orthonormal rows: max |U U^T - I| = {err:.3g} exceeds {ORTHONORMAL_TOL}"
                )
        if _validate.is_concrete(self.coeffs):
            c = np.asarray(self.coeffs)
            if c.ndim < 1 or c.shape[-1] != len(alphas):
                raise ValueError(f"coeffs must have shape ({len(alphas)},) to match alphas, got {c.shape}")
            _validate.check_finite_array("coeffs", c)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_terms(
        cls, U: Float[Array, "r d"], terms: Mapping[Sequence[int], float] | Iterable[tuple[Sequence[int], float]]
    ) -> "MultiIndexTarget":
        """Build from ``{alpha: coefficient}`` (or pairs); repeated multi-indices are summed."""
        merged: dict[tuple[int, ...], float] = {}
        items = terms.items() if isinstance(terms, Mapping) else terms
        for alpha, c in items:
            key = tuple(int(a) for a in alpha)
            merged[key] = merged.get(key, 0.0) + float(c)
        if not merged:
            raise ValueError("terms must hold at least one (multi-index, coefficient) pair")
        alphas = tuple(merged)
        return cls(U=jnp.asarray(U), coeffs=jnp.asarray([merged[a] for a in alphas], jnp.float32), alphas=alphas)

    def with_head(self, alphas: Alphas, coeffs: Float[Array, " T"]) -> "MultiIndexTarget":
        """Same ``U``, another head ``g'`` (used for transfer)."""
        return MultiIndexTarget(U=self.U, coeffs=jnp.asarray(coeffs, jnp.float32), alphas=tuple(alphas))

    # ------------------------------------------------------------------ shapes
    @property
    def r(self) -> int:
        return len(self.alphas[0])

    @property
    def d(self) -> int:
        return int(self.U.shape[-1])

    # ------------------------------------------------------------------ evaluation
    def g(self, z: Float[Array, "*batch r"]) -> Float[Array, "*batch"]:
        """The head ``g(z)``."""
        return multi_index_hermite(z, self.alphas) @ self.coeffs

    def __call__(self, x: Float[Array, "*batch d"]) -> Float[Array, "*batch"]:
        """``f*(x) = g(U x)``, batched over leading axes of ``x``."""
        if x.shape[-1] != self.d:
            raise ValueError(f"x has dimension {x.shape[-1]} but the target has d = {self.d}")
        return self.g(x @ self.U.T)

    def gradient(self, x: Float[Array, "*batch d"]) -> Float[Array, "*batch d"]:
        """``grad f*(x)`` by ``jax.grad``, batched."""
        flat = x.reshape(-1, x.shape[-1])
        return jax.vmap(jax.grad(self.__call__))(flat).reshape(x.shape)

    def hessian(self, x: Float[Array, "*batch d"]) -> Float[Array, "*batch d d"]:
        """``hess f*(x)`` by ``jax.hessian``, batched."""
        flat = x.reshape(-1, x.shape[-1])
        return jax.vmap(jax.hessian(self.__call__))(flat).reshape(x.shape + (x.shape[-1],))

    # ------------------------------------------------------------------ exact moments
    def _coefficient_of(self, alpha: tuple[int, ...]) -> Float[Array, ""]:
        try:
            return self.coeffs[self.alphas.index(alpha)]
        except ValueError:
            return jnp.zeros((), self.coeffs.dtype)

    def mean(self) -> Float[Array, ""]:
        """``E[f*]``: the coefficient of the zero multi-index."""
        return self._coefficient_of((0,) * self.r)

    def second_moment(self) -> Float[Array, ""]:
        """``E[f*^2] = sum_t c_t^2`` (orthonormality of the ``h_alpha``)."""
        return jnp.sum(self.coeffs**2)

    def variance(self) -> Float[Array, ""]:
        return self.second_moment() - self.mean() ** 2

    def normalise(self) -> "MultiIndexTarget":
        """Rescale the coefficients so that ``E[f*^2] = 1`` (docs/setting.md, "Inputs, targets and labels")."""
        return self.replace(coeffs=self.coeffs / jnp.sqrt(self.second_moment()))

    # ------------------------------------------------------------------ structure
    def _active_degrees(self) -> list[int]:
        if _validate.is_concrete(self.coeffs):
            c = np.asarray(self.coeffs)
            return [sum(a) for a, ci in zip(self.alphas, c) if ci != 0.0]
        return [sum(a) for a in self.alphas]

    @property
    def degree(self) -> int:
        """``p``: the largest ``|alpha|`` with a non-zero coefficient (all terms when coefficients are traced)."""
        degrees = self._active_degrees()
        return max(degrees) if degrees else 0

    @property
    def information_exponent(self) -> int | None:
        """The lowest ``|alpha| >= 1`` with a non-zero coefficient (``None`` for a constant target)."""
        degrees = [k for k in self._active_degrees() if k >= 1]
        return min(degrees) if degrees else None

    def latent_hessian(self) -> Float[Array, "r r"]:
        """``H_r = E_z[hess g(z)]`` in closed form from the degree-2 coefficients (module docstring)."""
        r = self.r
        rows, cols, scale, index = [], [], [], []
        for t, alpha in enumerate(self.alphas):
            if sum(alpha) != 2:
                continue
            nz = [i for i, a in enumerate(alpha) if a]
            if len(nz) == 1:
                rows.append(nz[0]), cols.append(nz[0]), scale.append(math.sqrt(2.0)), index.append(t)
            else:
                i, j = nz
                rows += [i, j]
                cols += [j, i]
                scale += [1.0, 1.0]
                index += [t, t]
        h = jnp.zeros((r, r), self.coeffs.dtype)
        if index:
            vals = self.coeffs[np.asarray(index)] * jnp.asarray(scale, self.coeffs.dtype)
            h = h.at[np.asarray(rows), np.asarray(cols)].add(vals)
        return h

    def hessian_expectation(self) -> Float[Array, "d d"]:
        """``H = E[hess f*(x)] = U^T H_r U`` (a ``d x d`` matrix living in ``span(U)``)."""
        return self.U.T @ self.latent_hessian() @ self.U

    def hessian_singular_values(self) -> np.ndarray:
        """Singular values of ``H_r`` in decreasing order (host-side, float64)."""
        return np.linalg.svd(np.asarray(self.latent_hessian(), np.float64), compute_uv=False)

    def hessian_rank(self, rtol: float = 1e-6) -> int:
        """Numerical rank of ``H`` (singular values above ``rtol * max(1, s_max)``)."""
        s = self.hessian_singular_values()
        return int(np.sum(s > rtol * max(1.0, float(s.max(initial=0.0)))))

    def condition_number(self, rtol: float = 1e-6) -> float:
        """``kappa = s_max / s_min`` of ``H_r`` over all ``r`` directions; ``inf`` when ``rank(H) < r``."""
        s = self.hessian_singular_values()
        if self.hessian_rank(rtol) < self.r:
            return math.inf
        return float(s[0] / s[-1])

    def describe(self) -> str:
        """A human-readable summary: the terms, moments, H's spectrum and information exponent."""
        lines = [f"MultiIndexTarget(d={self.d}, r={self.r}, degree p={self.degree}, "
                 f"information exponent={self.information_exponent})"]
        for alpha, c in zip(self.alphas, np.asarray(self.coeffs)):
            if c != 0:
                lines.append(f"  {c:+.4f} * h{list(alpha)}")
        lines.append(f"  E[f*] = {float(self.mean()):.4f}   E[f*^2] = {float(self.second_moment()):.4f}")
        s = self.hessian_singular_values()
        lines.append(f"  H = E[hess f*]: singular values {np.array2string(s, precision=4)}, "
                     f"rank {self.hessian_rank()}, kappa = {self.condition_number():.4g}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- catalogue
def _unit(r: int, *entries: tuple[int, int]) -> tuple[int, ...]:
    alpha = [0] * r
    for i, k in entries:
        alpha[i] += k
    return tuple(alpha)


def _build(key: PRNGKeyArray, d: int, r: int, terms: Mapping[tuple[int, ...], float]) -> MultiIndexTarget:
    _validate.check_int("d", d, low=1)
    _validate.check_int("r", r, low=1, high=d)
    return MultiIndexTarget.from_terms(random_orthonormal(key, r, d), terms)


def single_index(key: PRNGKeyArray, d: int, k: int) -> MultiIndexTarget:
    """``f*(x) = h_k(<u, x>)`` with a random unit ``u``: degree ``k``, information exponent ``k``.

    For ``k = 2`` the Hessian is ``sqrt(2) u u^T``; for ``k >= 3`` it is zero and the target lies outside the
    paper's theorem (one step finds no direction).
    """
    _validate.check_int("k", k, low=1, high=MAX_DEGREE)
    return _build(key, d, 1, {(k,): 1.0})


def separable(key: PRNGKeyArray, d: int, r: int = 2, k: int = 3) -> MultiIndexTarget:
    """``f*(x) = (1/sqrt(r)) sum_i h_k(z_i)``, ``z = U x`` with ``r`` random orthonormal directions: ``r`` copies of the
    single-index ``h_k`` target, ``E[g^2] = 1``, information exponent ``k`` in every direction (the committee
    protocol's target, :mod:`reprjax.methods.sgd_committee`).  For ``k = 2`` it is rotation invariant inside
    ``span(U)`` (``sum_i h_2(z_i)`` depends on ``|z|`` alone), so only the subspace can be recovered."""
    _validate.check_int("k", k, low=1, high=MAX_DEGREE)
    _validate.check_int("r", r, low=1)
    return _build(key, d, r, {_unit(r, (i, k)): 1.0 / math.sqrt(r) for i in range(r)})


def paper_target(key: PRNGKeyArray, d: int, r: int = 2, p: int = 4, cross_terms: bool = False) -> MultiIndexTarget:
    """The paper-style multi-index target: half its variance in a non-degenerate degree-2 part, half in degree p.

        g(z) = (1/sqrt(2)) * (1/sqrt(r)) sum_i h_2(z_i)  +  (1/sqrt(2)) * P_p(z)

    without cross terms ``P_p(z) = (1/sqrt(r)) sum_i h_p(z_i)``; with cross terms
    ``P_p(z) = (1/sqrt(2r)) sum_i [h_p(z_i) + h_{p-1}(z_i) h_1(z_{i+1 mod r})]`` (requires ``r >= 2``).
    ``E[g^2] = 1``, ``H = I_r / sqrt(r)`` (rank r, kappa = 1), degree p, information exponent 2.
    For r = 2, p = 4 without cross terms this is ``[h2(z1) + h2(z2) + h4(z1) + h4(z2)] / 2``.
    """
    _validate.check_int("p", p, low=3, high=MAX_DEGREE)
    _validate.check_int("r", r, low=1)
    cross_terms = _validate.check_type("cross_terms", cross_terms, bool)
    if cross_terms and r < 2:
        raise ValueError(f"r must be >= 2 for cross terms, got r = {r}")
    terms: dict[tuple[int, ...], float] = {}
    for i in range(r):
        terms[_unit(r, (i, 2))] = 1.0 / math.sqrt(2 * r)
    if not cross_terms:
        for i in range(r):
            terms[_unit(r, (i, p))] = 1.0 / math.sqrt(2 * r)
    else:
        for i in range(r):
            terms[_unit(r, (i, p))] = 1.0 / math.sqrt(4 * r)
            cross = _unit(r, (i, p - 1), ((i + 1) % r, 1))
            terms[cross] = terms.get(cross, 0.0) + 1.0 / math.sqrt(4 * r)
    return _build(key, d, r, terms)


def giant_step(key: PRNGKeyArray, d: int) -> MultiIndexTarget:
    """The two-direction "giant step" target ``g(z) = [h(z1) + h(z2)] / 2`` with ``h = He1 + He2/2 + He4/24``.

    In normalised features ``He1 = h1``, ``He2/2 = h2/sqrt(2)``, ``He4/24 = h4/sqrt(24)``.  Not normalised:
    ``E[g^2] = (1 + 1/2 + 1/24) / 2``; call ``.normalise()`` for unit variance.  It has a linear part (removed by
    Algorithm 1's label pre-processing) and ``H = I_2 / 2``.
    """
    terms: dict[tuple[int, ...], float] = {}
    for i in range(2):
        terms[_unit(2, (i, 1))] = 0.5
        terms[_unit(2, (i, 2))] = 0.5 / math.sqrt(2.0)
        terms[_unit(2, (i, 4))] = 0.5 / math.sqrt(24.0)
    return _build(key, d, 2, terms)


def staircase(key: PRNGKeyArray, d: int, length: int = 3) -> MultiIndexTarget:
    """The staircase ``z1 + z1 z2 + z1 z2 z3 + ...`` (``length`` steps over ``r = length`` directions).

    Each step is a single normalised Hermite product ``h_(1,..,1,0,..)``, so ``E[g^2] = length``; information
    exponent 1; ``H`` has only the ``z1 z2`` entry (rank 2 for ``length >= 2``: degenerate when ``r > 2``).
    """
    _validate.check_int("length", length, low=1, high=MAX_DEGREE)
    terms = {tuple([1] * k + [0] * (length - k)): 1.0 for k in range(1, length + 1)}
    return _build(key, d, length, terms)


def random_polynomial(
    key: PRNGKeyArray, d: int, r: int, p: int, kappa: float = 1.0, degree2_share: float = 0.5
) -> MultiIndexTarget:
    """A random degree-``p`` target with a prescribed condition number ``kappa`` of ``H``.

    ``H_r = Q diag(lambda) Q^T`` with ``Q`` Haar on ``O(r)`` and ``lambda`` geometric from 1 to ``1/kappa``; its
    entries become the degree-2 coefficients (``c_{2e_i} = H_ii / sqrt(2)``, ``c_{e_i+e_j} = H_ij``).  Every
    multi-index of degree ``3..p`` gets a Gaussian coefficient.  The degree-2 part is scaled to carry
    ``degree2_share`` of ``E[g^2] = 1``, the rest shared by degrees ``3..p``.  No constant or linear part.
    """
    _validate.check_int("d", d, low=1)
    _validate.check_int("r", r, low=1, high=d)
    _validate.check_int("p", p, low=2, high=MAX_DEGREE)
    _validate.check_number("kappa", kappa, low=1.0)
    _validate.check_number("degree2_share", degree2_share, low=0.0, high=1.0, low_open=True)
    if p == 2 and degree2_share != 1.0:
        raise ValueError(f"degree2_share must be 1 for p = 2, got {degree2_share}")
    if r == 1 and kappa != 1.0:
        raise ValueError(f"kappa must be 1 for r = 1 (a 1 x 1 Hessian), got {kappa}")
    terms = sum(count_multi_indices(r, k) for k in range(2, p + 1))
    if terms > MAX_TERMS:
        raise ValueError(f"random_polynomial with r = {r}, p = {p} has {terms:,} terms (every multi-index of degree "
                         f"2..{p}), more than MAX_TERMS = {MAX_TERMS:,} fit in memory when evaluated: lower r or p")
    k_u, k_q, k_c = jax.random.split(key, 3)
    lam = kappa ** (-np.arange(r) / max(r - 1, 1)) if r > 1 else np.ones(1)
    q, rr = _lapack.qr(jax.random.normal(k_q, (r, r), jnp.float32))
    q = q * jnp.where(jnp.diagonal(rr) < 0, -1.0, 1.0)[None, :]
    h = (q * jnp.asarray(lam, jnp.float32)[None, :]) @ q.T

    deg2 = all_multi_indices(r, 2)
    deg2_vals = []
    for alpha in deg2:
        nz = [i for i, a in enumerate(alpha) if a]
        deg2_vals.append(h[nz[0], nz[0]] / math.sqrt(2.0) if len(nz) == 1 else h[nz[0], nz[1]])
    deg2_vals = jnp.stack(deg2_vals)
    deg2_vals = deg2_vals * jnp.sqrt(degree2_share / jnp.sum(deg2_vals**2))

    alphas = list(deg2)
    coeffs = [deg2_vals]
    if p >= 3:
        higher = [a for k in range(3, p + 1) for a in all_multi_indices(r, k)]
        c_high = jax.random.normal(k_c, (len(higher),), jnp.float32)
        c_high = c_high * jnp.sqrt((1.0 - degree2_share) / jnp.sum(c_high**2))
        alphas += higher
        coeffs.append(c_high)
    return MultiIndexTarget(U=random_orthonormal(k_u, r, d), coeffs=jnp.concatenate(coeffs), alphas=tuple(alphas))


def transfer_head(r: int = 2, p: int = 4) -> dict[tuple[int, ...], float]:
    """The second head used for transfer: ``g'(z) = [P(z) + Q(z)] / sqrt(2)`` with a unit-variance degree-2 part
    ``P = (1/sqrt(r-1)) sum_{i<r-1} z_i z_{i+1}`` and degree-p part ``Q = (1/sqrt(r)) sum_i (-1)^i h_p(z_i)``.

    For r = 2, p = 4: ``g'(z) = [z1 z2 + (h4(z1) - h4(z2)) / sqrt(2)] / sqrt(2)``.  ``E[g'^2] = 1``.
    """
    _validate.check_int("r", r, low=2)
    _validate.check_int("p", p, low=3, high=MAX_DEGREE)
    terms: dict[tuple[int, ...], float] = {}
    for i in range(r - 1):
        terms[_unit(r, (i, 1), (i + 1, 1))] = 1.0 / math.sqrt(2 * (r - 1))
    for i in range(r):
        terms[_unit(r, (i, p))] = (-1.0) ** i / math.sqrt(2 * r)
    return terms


def transfer_pair(key: PRNGKeyArray, d: int, r: int = 2, p: int = 4) -> tuple[MultiIndexTarget, MultiIndexTarget]:
    """Two targets sharing ``U``: the source :func:`paper_target` and the target :func:`transfer_head`."""
    source = paper_target(key, d, r=r, p=p)
    head = transfer_head(r, p)
    return source, source.with_head(tuple(head), jnp.asarray(list(head.values()), jnp.float32))
