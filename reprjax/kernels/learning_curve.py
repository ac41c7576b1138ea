"""The learning curve of kernel ridge from theory: eigenvalues by degree, target power, and the eigenlearning equation.

For kernel eigenvalues ``lambda_i`` (with multiplicity), target coefficients ``v_i``, ``n`` samples, ridge ``delta``
(``alpha = (K + delta I)^{-1} y``) and label-noise variance ``sigma^2``, the deterministic equivalent of kernel ridge
(Bordelon, Canatar & Pehlevan 2020; Simon, Dickens, Karkada & DeWeese 2021, "eigenlearning"; rigorous for
``n ~ d^k``: Misiakiewicz 2022, Xiao, Hu, Misiakiewicz, Lu & Pennington 2022) solves

    n = sum_i lambda_i / (lambda_i + kappa) + delta / kappa

for ``kappa``; with learnabilities ``L_i = lambda_i / (lambda_i + kappa)`` and ``E0 = n / (n - sum_i L_i^2)`` the
test MSE against the noise-free target is ``E0 (sum_i (1 - L_i)^2 v_i^2 + sigma^2) - sigma^2`` (:func:`eigenlearning`).

A rotation-invariant kernel ``K(x, x') = k(|x|, |x'|, <x, x'> / (|x| |x'|))`` on ``x ~ N(0, I_d)`` has eigenfunctions
``phi(|x|) Y_k(x / |x|)``: spherical harmonics of degree ``k`` (``N(d, k)`` of them, :func:`multiplicity`) times
the eigenfunctions of a radial operator, whose kernel is the Funk-Hecke projection
``K_k(r, r') = E_t[k(r, r', t) P_(d,k)(t)]`` (``t`` with density proportional to ``(1 - t^2)^((d-3)/2)``,
``P_(d,k)`` the Gegenbauer polynomial with ``P(1) = 1``).  :func:`kernel_spectrum` evaluates it by Gauss-Jacobi
quadrature in ``t`` and Gauss-Laguerre quadrature in ``|x|^2 / 2 ~ Gamma(d / 2)`` (``geometry="gaussian"``, exact up
to quadrature), or on the sphere ``|x| = sqrt(d)`` alone (``geometry="sphere"``: one eigenvalue per degree, the
usual approximation, with the target's Hermite degree-``k`` energy put on degree ``k``).  Degrees above ``k_max``
are kept only through their summed eigenvalue (``tail``), which acts as extra ridge (their learnability is taken
as 0).  docs/kernel_theory.md validates the prediction against simulated kernel ridge and uses it where simulation
cannot go.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.optimize
from jaxtyping import Float

from reprjax import _validate
from reprjax.kernels import infinite, theory
from reprjax.problem.targets import MultiIndexTarget

GEOMETRIES = ("gaussian", "sphere")
#: Rounding of a projection is bounded by ``ROUNDING_MARGIN * eps * sum |w K P_k|``; eigenvalues below that bound are
#: set to 0 and a degree whose top eigenvalue is below ``RESOLVED_RATIO`` times it is left to the tail with all the
#: degrees above it (float64 resolves degree 4 at d = 1024 with room to spare: docs/kernel_theory.md).
ROUNDING_MARGIN = 64.0
RESOLVED_RATIO = 1e3


def multiplicity(d: int, k: int) -> int:
    """``N(d, k) = C(d + k - 1, k) - C(d + k - 3, k - 2)``: the number of spherical harmonics of degree ``k``."""
    return math.comb(d + k - 1, k) - (math.comb(d + k - 3, k - 2) if k >= 2 else 0)


def gegenbauer_polynomials(d: int, k_max: int, t: Float[np.ndarray, " T"]) -> Float[np.ndarray, "K T"]:
    """``P_(d,k)(t)`` for ``k = 0..k_max``, normalised ``P(1) = 1`` (the Legendre polynomials of ``R^d``), by the
    three-term recurrence ``(k + d - 2) P_(k+1) = (2k + d - 2) t P_k - k P_(k-1)``."""
    out = np.empty((k_max + 1, t.size))
    out[0] = 1.0
    if k_max:
        out[1] = t
    for k in range(1, k_max):
        out[k + 1] = ((2 * k + d - 2) * t * out[k] - k * out[k - 1]) / (k + d - 2)
    return out


def angle_quadrature(d: int, nodes: int) -> tuple[Float[np.ndarray, " T"], Float[np.ndarray, " T"]]:
    """Gauss-Jacobi nodes and weights (summing to 1) for ``t = <u, u'>``, ``u, u'`` uniform on ``S^(d-1)`` (weight
    ``(1 - t^2)^((d-3)/2)``), by Golub-Welsch on the Gegenbauer recurrence (``lambda = (d - 2) / 2``); the same rule
    as ``scipy.special.roots_jacobi(nodes, a, a)``, whose Newton polish breaks down past ``d ~ 1000`` with 512
    nodes."""
    lam = (d - 2) / 2
    n = np.arange(1, nodes, dtype=np.float64)
    off = np.sqrt(n * (n + 2 * lam - 1) / (4 * (n + lam) * (n + lam - 1)))
    t, vecs = scipy.linalg.eigh_tridiagonal(np.zeros(nodes), off)
    w = vecs[0] ** 2
    return t, w / w.sum()


def radial_quadrature(d: int, nodes: int) -> tuple[Float[np.ndarray, " R"], Float[np.ndarray, " R"]]:
    """Nodes ``|x|`` and weights (summing to 1) for ``x ~ N(0, I_d)``: Gauss-Laguerre in ``|x|^2 / 2 ~ Gamma(d / 2)``
    by Golub-Welsch (scipy's ``roots_genlaguerre`` overflows its weights past ``d ~ 300``)."""
    alpha = d / 2 - 1
    i = np.arange(nodes)
    diag, off = 2 * i + alpha + 1, np.sqrt(i[1:] * (i[1:] + alpha))
    s, vecs = scipy.linalg.eigh_tridiagonal(diag, off)
    w = vecs[0] ** 2
    return np.sqrt(2 * s), w / w.sum()


@dataclasses.dataclass(frozen=True)
class KernelSpectrum:
    """Eigenvalues of a rotation-invariant kernel on ``N(0, I_d)`` (or the sphere), grouped by harmonic degree.

    Attributes:
      d: input dimension; geometry: ``gaussian`` or ``sphere``.
      degree, values, multiplicity: ``(G,)`` per group: harmonic degree ``k``, eigenvalue, ``N(d, k)``.
      trace: ``E[K(x, x)]`` (the sum of all eigenvalues); tail: the part of it beyond degree ``k_max``.
      radii, weights: ``(R,)`` radial quadrature; vectors: per degree, the ``(R, R)`` eigenvectors of the weighted
        radial operator (columns, in the order of that degree's groups).
    """

    d: int
    geometry: str
    degree: np.ndarray
    values: np.ndarray
    multiplicity: np.ndarray
    trace: float
    tail: float
    radii: np.ndarray
    weights: np.ndarray
    vectors: tuple[np.ndarray, ...]

    @property
    def k_max(self) -> int:
        return len(self.vectors) - 1


def kernel_spectrum(
    kernel_fn: Callable, d: int, k_max: int = 12, geometry: str = "gaussian", radial_nodes: int = 16,
    angle_nodes: int = 256,
) -> KernelSpectrum:
    """Eigenvalues of ``kernel_fn`` on ``N(0, I_d)`` inputs by degree, by quadrature (module docstring).

    Args:
      kernel_fn: ``(x1 (n1, d), x2 (n2, d) | None) -> (n1, n2)`` rotation-invariant kernel (e.g.
        :func:`reprjax.kernels.infinite.ntk_infinite` with its scales bound); called in float64 inside a scoped
        ``jax.enable_x64`` on ``radial_nodes x radial_nodes * angle_nodes`` pairs.
      d: input dimension, ``>= 3``.
      k_max: highest degree resolved; the rest is the ``tail`` (fewer where float64 cannot resolve a degree:
        :data:`RESOLVED_RATIO`).
      geometry: ``gaussian`` (the radius varies as for ``N(0, I_d)``) or ``sphere`` (``|x| = sqrt(d)``).
      radial_nodes, angle_nodes: quadrature sizes (docs/kernel_theory.md checks their convergence).
    """
    _validate.check_int("d", d, low=3)
    _validate.check_int("k_max", k_max, low=0)
    _validate.check_choice("geometry", geometry, GEOMETRIES)
    _validate.check_int("radial_nodes", radial_nodes, low=1)
    _validate.check_int("angle_nodes", angle_nodes, low=k_max + 1)
    t, wt = angle_quadrature(d, angle_nodes)
    r, wr = radial_quadrature(d, radial_nodes) if geometry == "gaussian" else (np.array([math.sqrt(d)]), np.ones(1))
    n_r = r.size
    x1 = np.zeros((n_r, d))
    x1[:, 0] = r
    x2 = np.zeros((n_r, t.size, d))
    x2[:, :, 0] = r[:, None] * t[None, :]
    x2[:, :, 1] = r[:, None] * np.sqrt(1.0 - t * t)[None, :]
    with jax.enable_x64(True):
        gram = np.asarray(kernel_fn(jnp.asarray(x1), jnp.asarray(x2.reshape(-1, d))), np.float64)
        diag = np.diag(np.asarray(kernel_fn(jnp.asarray(x1), None), np.float64))
    gram = gram.reshape(n_r, n_r, t.size)
    poly = gegenbauer_polynomials(d, k_max, t)
    proj = np.einsum("abt,t,kt->kab", gram, wt, poly)
    # rounding floor of each projection: the sum cancels down from sum |w K P_k| (~ d^(-k/2)) to lambda_k (~ d^-k)
    floor = ROUNDING_MARGIN * np.finfo(np.float64).eps * np.einsum("abt,t,kt->kab", np.abs(gram), wt, np.abs(poly))
    sw = np.sqrt(wr)
    degree, values, mult, vectors = [], [], [], []
    for k in range(k_max + 1):
        op = sw[:, None] * proj[k] * sw[None, :]
        evals, evecs = np.linalg.eigh((op + op.T) / 2)
        order = np.argsort(evals)[::-1]
        evals, evecs = evals[order], evecs[:, order]
        noise = float(np.linalg.norm(sw[:, None] * floor[k] * sw[None, :], 2))
        if evals[0] <= RESOLVED_RATIO * noise:  # this degree and the ones above go to the tail
            break
        evals = np.where(evals > noise, evals, 0.0)
        degree += [k] * n_r
        values += list(evals)
        mult += [float(multiplicity(d, k))] * n_r
        vectors.append(evecs)
    values_a, mult_a = np.asarray(values), np.asarray(mult)
    trace = float(wr @ diag)
    tail = max(trace - float(values_a @ mult_a), 0.0)
    return KernelSpectrum(d=d, geometry=geometry, degree=np.asarray(degree), values=values_a, multiplicity=mult_a,
                          trace=trace, tail=tail, radii=r, weights=wr, vectors=tuple(vectors))


def target_power(spectrum: KernelSpectrum, target: MultiIndexTarget, preprocess: bool = True) -> np.ndarray:
    """``(G,)`` the target's energy on each eigenvalue group (summed over its ``N(d, k)`` harmonics).

    ``gaussian``: the exact split of :func:`reprjax.kernels.theory.harmonic_gram` projected on the radial
    eigenvectors; ``sphere``: the Hermite degree-``k`` energy on the degree-``k`` eigenvalue.  ``preprocess`` leaves
    out the constant and linear Hermite parts (removed by the label pre-processing of every method).
    """
    min_degree = 2 if preprocess else 0
    power = np.zeros_like(spectrum.values)
    if spectrum.geometry == "sphere":
        for k, e in theory.energy_by_degree(target).items():
            if k < min_degree:
                continue
            if k > spectrum.k_max:
                raise ValueError(f"the target has degree {k} > k_max = {spectrum.k_max}: raise k_max")
            power[spectrum.degree == k] = e
        return power
    sw, r = np.sqrt(spectrum.weights), spectrum.radii
    for k, g in theory.harmonic_gram(target, min_degree, spectrum.d).items():
        if k > spectrum.k_max:
            raise ValueError(f"the target has harmonic degree {k} > k_max = {spectrum.k_max}: raise k_max")
        powers = r[:, None] ** np.arange(g.shape[0])[None, :]  # (R, m)
        weighted = sw[:, None] * (powers @ g @ powers.T) * sw[None, :]
        vecs = spectrum.vectors[k]
        power[spectrum.degree == k] = np.einsum("ag,ab,bg->g", vecs, weighted, vecs)
    return power


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The eigenlearning prediction at one ``(n, ridge)``: ``kappa``, learnabilities ``(G,)``, ``E0`` and the test
    MSE against the noise-free target."""

    kappa: float
    learnability: np.ndarray
    e0: float
    error: float


def eigenlearning(
    values: Sequence[float] | np.ndarray, multiplicity: Sequence[float] | np.ndarray,
    power: Sequence[float] | np.ndarray, n: float, ridge: float, noise_var: float = 0.0, tail: float = 0.0,
) -> Prediction:
    """Solve ``n = sum_g N_g lambda_g / (lambda_g + kappa) + (ridge + tail) / kappa`` and return the test MSE.

    Args:
      values, multiplicity: ``(G,)`` eigenvalues and how many modes share each.
      power: ``(G,)`` target energy on each group (``sum v_i^2`` over its modes).
      n: training samples (> 0; need not be an integer).
      ridge: ``delta`` of ``(K + delta I)^{-1}``, ``>= 0``.
      noise_var: label-noise variance ``sigma^2``.
      tail: summed eigenvalues of modes too small to resolve (learnability 0): extra ridge.
    """
    lam, mult, v2 = (np.asarray(a, np.float64) for a in (values, multiplicity, power))
    _validate.check_number("n", n, low=0.0, low_open=True)
    _validate.check_number("ridge", ridge, low=0.0)
    _validate.check_number("noise_var", noise_var, low=0.0)
    _validate.check_number("tail", tail, low=0.0)
    extra = ridge + tail
    if extra <= 0 and float(mult[lam > 0].sum()) <= n:
        raise ValueError(f"with ridge + tail = 0 the equation needs more than n = {n} modes, got {mult[lam > 0].sum()}")

    def excess(log_kappa: float) -> float:
        kappa = math.exp(log_kappa)
        return float(mult @ (lam / (lam + kappa))) + extra / kappa - n

    hi = math.log((float(mult @ lam) + extra) / n * 2.0)
    lo = math.log(extra / n) if extra > 0 else hi
    while excess(lo) < 0:
        lo -= 5.0
    log_kappa = scipy.optimize.brentq(excess, lo, hi, xtol=1e-14, rtol=1e-13) if lo < hi else lo
    kappa = math.exp(log_kappa)
    learn = lam / (lam + kappa)
    e0 = n / (n - float(mult @ learn**2))
    error = e0 * (float(((1 - learn) ** 2) @ v2) + noise_var) - noise_var
    return Prediction(kappa=kappa, learnability=learn, e0=e0, error=error)


def predicted_error(
    spectrum: KernelSpectrum, power: np.ndarray, n: float, strengths: Sequence[float], noise_var: float = 0.0,
    val_fraction: float = 0.2, second_moment: float = 1.0,
) -> tuple[float, float]:
    """``(normalised error, chosen strength)``: the prediction at ``n`` samples minimised over the relative ridge
    grid, as the simulations choose it (``delta = strength * tr(K) = strength * n_fit * E[K(x, x)]``,
    :mod:`reprjax.solvers.ridge`; fitted on ``n_fit = n - round(val_fraction n)`` samples)."""
    n_fit = n - max(1.0, round(val_fraction * n)) if val_fraction > 0 else n
    best = (math.inf, math.nan)
    for s in strengths:
        pred = eigenlearning(spectrum.values, spectrum.multiplicity, power, n_fit, s * n_fit * spectrum.trace,
                             noise_var, spectrum.tail)
        best = min(best, (pred.error / second_moment, float(s)))
    return best


def predicted_n_star(
    spectrum: KernelSpectrum, power: np.ndarray, threshold: float, strengths: Sequence[float],
    noise_var: float = 0.0, val_fraction: float = 0.2, second_moment: float = 1.0, n_range: tuple[float, float]
    = (10.0, 1e16),
) -> float:
    """The (real) ``n`` at which :func:`predicted_error` falls to ``threshold``; ``nan`` if not in ``n_range``."""
    def gap(log_n: float) -> float:
        return predicted_error(spectrum, power, math.exp(log_n), strengths, noise_var, val_fraction,
                               second_moment)[0] - threshold

    lo, hi = (math.log(v) for v in n_range)
    if gap(lo) <= 0 or gap(hi) > 0:
        return math.nan
    return math.exp(scipy.optimize.brentq(gap, lo, hi, xtol=1e-6))


def predicted_curve(
    spectrum: KernelSpectrum, power: np.ndarray, ns: Sequence[float], strengths: Sequence[float],
    noise_var: float = 0.0, val_fraction: float = 0.2, second_moment: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(errors (N,), chosen strengths (N,))``: :func:`predicted_error` at each sample count of ``ns``."""
    rows = [predicted_error(spectrum, power, float(n), strengths, noise_var, val_fraction, second_moment) for n in ns]
    return np.array([e for e, _ in rows]), np.array([s for _, s in rows])


def ntk_spectrum_and_power(
    target: MultiIndexTarget, a_scale: float = 1.0, bias_var: float = 1.0, geometry: str = "gaussian",
    k_max: int = 12, preprocess: bool = True,
) -> tuple[KernelSpectrum, np.ndarray]:
    """The infinite-width ReLU NTK (all parts, :func:`reprjax.kernels.infinite.ntk_infinite`) at the target's ``d``:
    its spectrum and the target's power on it."""
    def kernel_fn(x1, x2):
        return infinite.ntk_infinite(x1, x2, a_scale=a_scale, bias_var=bias_var)

    spectrum = kernel_spectrum(kernel_fn, target.d, k_max=k_max, geometry=geometry)
    return spectrum, target_power(spectrum, target, preprocess)


def extended_strengths(strengths: Sequence[float], floor: float = 1e-16) -> tuple[float, ...]:
    """``strengths`` with decades down to ``floor`` prepended: a relative grid whose floor sits below the degree-``p``
    eigenvalues (``~ d^-p tr(K) / n``), which a fixed floor does not at large ``d`` (docs/kernel_theory.md)."""
    low = min(strengths)
    extra = [low * 10.0**-j for j in range(1, 64) if low * 10.0**-j >= floor * (1 - 1e-9)]
    return tuple(sorted(extra)) + tuple(strengths)


def n_star_table(
    targets_by_d: Mapping[int, MultiIndexTarget], threshold: float, strengths: Sequence[float],
    a_scale: float = 1.0, bias_var: float = 1.0, noise_var: float = 0.0, val_fraction: float = 0.2,
) -> list[dict[str, float]]:
    """Predicted ``n*`` of infinite-NTK ridge per ``d``: rows ``{d, n_star, n_star_extended, exponent}``.

    ``n_star`` tunes the ridge over ``strengths`` (the simulations' grid), ``n_star_extended`` over
    :func:`extended_strengths` of it; ``exponent`` is the local exponent of ``n_star_extended`` from the previous
    ``d`` (``nan`` for the first).  ``nan`` n*: the error does not reach ``threshold`` (e.g. a grid floored above the
    degree-``p`` eigenvalues).
    """
    rows = []
    for d, target in sorted(targets_by_d.items()):
        spectrum, power = ntk_spectrum_and_power(target, a_scale, bias_var, preprocess=True)
        second = float(target.second_moment())
        rows.append(dict(d=d, n_star=predicted_n_star(spectrum, power, threshold, strengths, noise_var,
                                                      val_fraction, second),
                         n_star_extended=predicted_n_star(spectrum, power, threshold, extended_strengths(strengths),
                                                          noise_var, val_fraction, second)))
    for prev, row in zip([None] + rows, rows):
        row["exponent"] = (math.nan if prev is None else
                           local_exponents([prev["d"], row["d"]], [prev["n_star_extended"], row["n_star_extended"]])[0])
    return rows


def local_exponents(dims: Sequence[int], n_star: Sequence[float]) -> list[float]:
    """``log(n*_(i+1) / n*_i) / log(d_(i+1) / d_i)`` between consecutive dimensions."""
    return [math.log(b / a) / math.log(e / c) for c, e, a, b in zip(dims, dims[1:], n_star, n_star[1:])]


__all__ = ["GEOMETRIES", "KernelSpectrum", "Prediction", "angle_quadrature", "eigenlearning", "extended_strengths",
           "gegenbauer_polynomials", "kernel_spectrum", "local_exponents", "multiplicity", "n_star_table",
           "ntk_spectrum_and_power", "predicted_curve", "predicted_error", "predicted_n_star", "radial_quadrature",
           "target_power"]
