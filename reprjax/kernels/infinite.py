"""Infinite-width kernels of the two-layer ReLU network at its initialisation, in closed form.

:func:`relu_nngp`, :func:`relu_step_kernel` and :func:`ntk_infinite` are the arc-cosine kernels of order 1 and 0
and the infinite-width NTK, normalised per neuron so that ``kernels.entk_two_layer / m -> ntk_infinite`` as
``m -> infinity`` for ``a = +-a_scale``, ``w ~ N(0, I_d / d)`` and ``b ~ N(0, bias_var)`` (Cho & Saul 2009;
Jacot et al. 2018).  For ReLU with ``b = 0`` the sphere initialisation gives the same kernels: ReLU is positively
homogeneous and ``g / |g|`` is independent of ``|g|`` for Gaussian ``g``, so ``E_u[relu(u.x1) relu(u.x2)] =
E_g[relu(g.x1) relu(g.x2)] / E|g|^2`` for ``u`` uniform on the sphere, which equals the ``N(0, I_d / d)`` value; the
step kernel depends on the angle only.  (With biases the two differ.)  All are also exported by
:mod:`reprjax.kernels.empirical`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from reprjax import _validate
from reprjax.kernels.inputs import PARTS, _check_inputs, _check_parts


#: Abramowitz & Stegun (1964) 4.4.46: ``arccos(x) = sqrt(1 - x) sum_k a_k x^k + e(x)``, ``|e| <= 2e-8`` on
#: ``[0, 1]``, below float32 resolution; docs/kernels_at_scale.md, "The arc-cosine kernels' cost".
ARCCOS_COEFFICIENTS = (1.5707963050, -0.2145988016, 0.0889789874, -0.0501743046, 0.0308918810, -0.0170881256,
                       0.0066700901, -0.0012624911)


def _safe_sqrt(u):
    """``sqrt(u)`` for ``u >= 0`` with a zero (not infinite) gradient at ``u = 0``."""
    pos = u > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, u, 1.0)), 0.0)


def arccos_parts(rho: Float[Array, "..."]) -> tuple[Float[Array, "..."], Float[Array, "..."]]:
    """``(pi - arccos(rho), sqrt(1 - rho^2))`` for ``rho`` in ``[-1, 1]``, accurate (relative) near ``rho = +-1``.

    ``a = arccos(|rho|)`` is ``sqrt(1 - |rho|) P(|rho|)`` with the degree-7 polynomial of
    :data:`ARCCOS_COEFFICIENTS` in float32 (a square root and 7 multiply-adds: the NTK 9-15x cheaper per entry on
    CPU than with ``jnp.arccos``, docs/kernels_at_scale.md) and ``jnp.arccos`` in float64 (the reference); then
    ``pi - arccos(rho)`` is ``a`` for ``rho < 0`` (small and relatively accurate at ``rho -> -1``) and ``pi - a``
    otherwise, and ``sqrt(1 - rho^2) = sqrt((1 - |rho|)(1 + |rho|))`` (``1 - |rho|`` is exact near 1).  Gradients are
    finite at ``rho = +-1``.
    """
    x = jnp.abs(rho)
    u = 1.0 - x
    if rho.dtype == jnp.float64:
        inside = x < 1.0
        a = jnp.where(inside, jnp.arccos(jnp.where(inside, x, 0.0)), 0.0)
    else:
        poly = jnp.full_like(x, ARCCOS_COEFFICIENTS[-1])
        for coefficient in ARCCOS_COEFFICIENTS[-2::-1]:
            poly = poly * x + coefficient
        a = _safe_sqrt(u) * poly
    return jnp.where(rho < 0, a, jnp.pi - a), _safe_sqrt(u * (1.0 + x))


def _angles(x1, x2, bias_var, symmetric):
    """``sqrt(s11 s22)``, ``rho = cos theta``, ``pi - theta``, ``sin theta`` and masks of zero second moments, safe
    for values and grads (a zero second moment gives ``rho = 0`` and ``norm = 0``).

    ``rho`` is ``s12 / sqrt(s11 s22)`` per entry.  Per-row reciprocals (``s12 * r1 * r2``, two products per entry)
    were tried and dropped: at XLA's CPU optimisation level 0 (the tests' setting) the float64 Nystrom normal
    equations over such kernel blocks, times a captured 0/1 centre mask inside ``lax.scan``, came out 0.3% wrong
    (tests/test_falkon.py), while each block alone was exact."""
    d = x1.shape[-1]
    s11 = jnp.sum(x1 * x1, axis=-1)[:, None] / d + bias_var
    s22 = jnp.sum(x2 * x2, axis=-1)[None, :] / d + bias_var
    prod = s11 * s22
    pos = prod > 0
    norm = jnp.sqrt(jnp.where(pos, prod, 1.0))
    rho = jnp.clip(jnp.where(pos, x1 @ x2.T / d + bias_var, 0.0) / norm, -1.0, 1.0)
    if symmetric:  # exact diagonal: theta = 0 without rounding
        rho = jnp.where(jnp.eye(rho.shape[0], dtype=bool), 1.0, rho)
    pmt, sin = arccos_parts(rho)
    return jnp.where(pos, norm, 0.0), rho, pmt, sin, s11 <= 0, s22 <= 0


def _prepare(x1, x2, bias_var):
    _validate.check_number("bias_var", bias_var, low=0.0)
    symmetric = _check_inputs(x1, x2)
    # float64 inputs (inside jax.enable_x64, e.g. reprjax.solvers.nystrom) keep float64; anything else is float32
    dt = jnp.float64 if jnp.asarray(x1).dtype == jnp.float64 else jnp.float32
    x1 = jnp.asarray(x1, dt)
    return x1, (x1 if symmetric else jnp.asarray(x2, dt)), symmetric


def _nngp_from(norm, rho, pmt, sin):
    # sin theta + (pi - theta) cos theta, with cos theta = rho
    return norm * (sin + pmt * rho) / (2 * jnp.pi)


def _step_from(pmt, zero1, zero2):
    # a zero pre-activation is always >= 0: E[1{0 >= 0} 1{v >= 0}] = 1/2, and 1 when both vanish
    return jnp.where(zero1 & zero2, 1.0, jnp.where(zero1 | zero2, 0.5, pmt / (2 * jnp.pi)))


@functools.partial(jax.jit, static_argnames=("symmetric",))
def _nngp(x1, x2, bias_var, symmetric):
    norm, rho, pmt, sin, _, _ = _angles(x1, x2, bias_var, symmetric)
    return _nngp_from(norm, rho, pmt, sin)


@functools.partial(jax.jit, static_argnames=("symmetric",))
def _step(x1, x2, bias_var, symmetric):
    _, _, pmt, _, zero1, zero2 = _angles(x1, x2, bias_var, symmetric)
    return _step_from(pmt, zero1, zero2)


def relu_nngp(
    x1: Float[Array, "n1 d"], x2: Float[Array, "n2 d"] | None = None, bias_var: float = 0.0
) -> Float[Array, "n1 n2"]:
    """Arc-cosine kernel of order 1: ``E[relu(w.x1 + b) relu(w.x2 + b)]``, ``w ~ N(0, I_d/d)``, ``b ~ N(0, bias_var)``.

    ``sqrt(s11 s22) (sin theta + (pi - theta) cos theta) / (2 pi)`` with ``s_ij = x_i.x_j / d + bias_var`` and
    ``cos theta = s12 / sqrt(s11 s22)`` (Cho & Saul 2009).  The random-features / a-part kernel of docs/setting.md,
    "What the paper proves".  ``rho`` is clipped into ``[-1, 1]`` and ``theta = 0, pi`` are handled without NaN values
    or grads.
    Precision: float32 rounding of ``rho`` limits ``theta`` near 0 and pi to about ``sqrt(2 eps) ~ 5e-4`` for
    distinct (anti)parallel inputs (a copy of ``x1`` passed as ``x2``); the diagonal of a symmetric call is exact.

    Args:
      x1: ``(n1, d)`` inputs.
      x2: ``(n2, d)`` inputs, or ``None`` for the symmetric Gram matrix of ``x1`` (exact diagonal).
      bias_var: variance of the bias, ``>= 0``.

    Returns:
      ``(n1, n2)`` kernel matrix.
    """
    x1, x2, sym = _prepare(x1, x2, bias_var)
    return _nngp(x1, x2, bias_var, sym)


def relu_step_kernel(
    x1: Float[Array, "n1 d"], x2: Float[Array, "n2 d"] | None = None, bias_var: float = 0.0
) -> Float[Array, "n1 n2"]:
    """Arc-cosine kernel of order 0: ``E[1{u >= 0} 1{v >= 0}] = (pi - theta) / (2 pi)`` for the pre-activations
    ``u = w.x1 + b``, ``v = w.x2 + b`` of :func:`relu_nngp` (docs/setting.md, "What the paper proves").  A zero
    pre-activation counts as firing (``1{0 >= 0} = 1``, as in ``activation_derivative("relu")``).  Same precision note
    as :func:`relu_nngp` (here an error of up to ~1e-4 near ``theta = 0, pi`` off the symmetric diagonal).

    Args:
      x1: ``(n1, d)`` inputs.
      x2: ``(n2, d)`` inputs, or ``None`` for the symmetric Gram matrix of ``x1``.
      bias_var: variance of the bias, ``>= 0``.

    Returns:
      ``(n1, n2)`` kernel matrix.
    """
    x1, x2, sym = _prepare(x1, x2, bias_var)
    return _step(x1, x2, bias_var, sym)


def ntk_infinite(
    x1: Float[Array, "n1 d"],
    x2: Float[Array, "n2 d"] | None = None,
    a_scale: float = 1.0,
    bias_var: float = 0.0,
    parts: Sequence[str] = PARTS,
) -> Float[Array, "n1 n2"]:
    """Infinite-width NTK per neuron of the ReLU network at initialisation: ``lim entk_two_layer / m``.

    ``a_scale^2 (x1.x2) step [W part] + nngp [a part] + a_scale^2 step [b part]`` for
    :func:`reprjax.network.init_symmetric` networks (``a = +-a_scale``, ``w ~ N(0, I_d/d)`` or, with ``b = 0``,
    the unit sphere, ``b ~ N(0, bias_var)``); docs/setting.md, "What the paper proves" (the kernel lower bound).

    Args:
      x1: ``(n1, d)`` inputs.
      x2: ``(n2, d)`` inputs, or ``None`` for the symmetric Gram matrix of ``x1``.
      a_scale: ``|a_j|`` at initialisation (``NetworkConfig.a_scale``).
      bias_var: ``init_bias_scale ** 2``, ``>= 0``.
      parts: non-empty subset of ``("W", "a", "b")``.

    Returns:
      ``(n1, n2)`` kernel matrix.
    """
    parts = _check_parts(parts)
    _validate.check_number("a_scale", a_scale)
    x1, x2, sym = _prepare(x1, x2, bias_var)
    return _ntk_infinite(x1, x2, a_scale, bias_var, parts, sym)


@functools.partial(jax.jit, static_argnames=("parts", "symmetric"))
def _ntk_infinite(x1, x2, a_scale, bias_var, parts, symmetric):
    norm, rho, pmt, sin, zero1, zero2 = _angles(x1, x2, bias_var, symmetric)  # once for every part
    out = 0.0
    if "W" in parts or "b" in parts:
        scale = (x1 @ x2.T if "W" in parts else 0.0) + (1.0 if "b" in parts else 0.0)
        out = a_scale**2 * scale * _step_from(pmt, zero1, zero2)
    if "a" in parts:
        out = out + _nngp_from(norm, rho, pmt, sin)
    return out
