"""One neuron learning a single-index target on the sphere: online SGD, smoothed online SGD and SGD reusing each
batch, as the theorems state them (issue 26; docs/sgd_exponents.md).

The student is ``sigma(<w, x>)`` with ``|w| = 1`` and the teacher's own link ``sigma`` (known link, as in Ben Arous,
Gheissari & Jagannath 2021), trained on the **correlation loss** ``L(w; x, y) = -y sigma(<w, x>)`` (Damian, Nichani,
Ge & Lee 2023 use it; on the sphere ``E[sigma(<w, x>)^2]`` does not depend on ``w``, so the square loss has the same
population gradient up to a factor 2).  Its spherical gradient is ``G = -y sigma'(<w, x>) P_w x`` with
``P_w = I - w w^T``; for ``sigma = h_k`` the population flow is ``dm/dt = k m^(k-1) (1 - m^2)`` (the Hermite
correlation flow).  Every update is spherical: ``w <- (w - eta G) / |w - eta G|``, ``G`` the batch mean.

Protocols (``eta = eta_scale * b * s(d)`` with batch ``b``: a batch of ``b`` averages ``b`` gradients, so its step
is ``b`` single-sample steps; this keeps the sample count the theorem's while the per-step overhead drops):

* ``online`` (Ben Arous et al. 2021, Theorem 1.3): fresh samples, ``s = d^(-k/2)`` for information exponent
  ``k >= 3`` and ``s = 1/d`` for ``k <= 2``.  The drift ``eta k m^(k-1)`` beats the retraction ``eta^2 |G|^2 m / 2``
  (``|G|^2 ~ d``) at ``m ~ d^(-1/2)`` only if ``eta <~ d^(-k/2)``; then ``n ~ d^(k-1)`` (``d log d`` at ``k = 2``,
  ``d`` at ``k = 1``).
* ``smoothed`` (Damian et al. 2023, Algorithm 1 and Theorem 1): the loss averaged over the sphere of radius
  ``lambda = lam_scale d^(1/4)`` around ``w`` in its tangent space, ``L_lambda(w) = E_z[L((w + lambda z) / |w +
  lambda z|)]``, ``z`` uniform on the unit sphere of ``w^perp``; ``s = d^(-k/2) lambda^(2k - 2)`` for ``k >= 2``
  (``= d^(-1/2)`` at ``k = 3``, ``lam_scale = 1``), ``lambda / d`` for ``k = 1``; ``n ~ d^(k-1) lambda^(4-2k) =
  d^(k/2)`` (``k >= 3``), the online ``d log d`` and ``d`` below.  The step is the largest the retraction allows:
  to leading order the smoothed loss's degree-``k`` drift at small ``m`` is ``1 / lambda`` (``k = 1``), ``2 m /
  lambda^2`` (``k = 2``), ``k (lambda^2 / d)^((k-1)/2) / lambda^k`` (odd ``k >= 3``) or ``k (k-1) m (lambda^2 /
  d)^((k-2)/2) / lambda^k`` (even ``k >= 4``), and the per-sample gradient's squared norm ``~ d / lambda^(2k)``, so a
  step ``lambda^2`` (``k >= 2``; ``lambda`` at ``k = 1``) times the unsmoothed one keeps the retraction below the
  drift; the step ``d^(-k/2) lambda^(2k-4)`` measured ``n ~ d^2`` on ``h_3``
  (docs/sgd_exponents.md, "The smoothed step").  One sample's smoothed loss depends on ``x`` only through
  ``a = <w, x>`` and ``rho = |P_w x|``: ``-y E_t[sigma((a + lambda rho t) / sqrt(1 + lambda^2))]`` with ``t`` the
  first coordinate of a uniform point of ``S^(d-2)`` (density ``(1 - t^2)^((d-4)/2)``), computed by Gauss-Jacobi
  quadrature; its gradient is exact per sample, hence an unbiased estimate of ``grad L_lambda`` (and of lower
  variance than one draw of ``z``).
* ``reuse`` (Dandi, Troiani, Arnaboldi, Pesce, Zdeborova & Krzakala 2024, "The benefits of reusing batches for
  gradient descent in two-layer networks"; Arnaboldi, Dandi, Krzakala, Pesce & Stephan 2024, "Repetita iuvant"):
  each fresh batch takes ``passes`` spherical GD steps before the next; ``s = 1/d``, so a sample's own term in
  ``<w_1, x> = <w_0, x> + (eta / b) c |x|^2 + ...`` is ``eta_scale * c`` (order 1) and the later passes see ``y``
  non-linearly: the sample count follows the generative exponent ``k_g`` (Damian, Pillaud-Vivien, Lee & Bruna
  2024), ``n ~ d`` (``k_g = 1``) or ``d log d`` (``k_g = 2``).  Their scalings in these units (their public code):
  Dandi et al. take GD on one batch of ``n_b = 5 d`` with ``lr = 0.2`` on weights of norm ``sqrt(d)``, i.e.
  ``eta_scale = 0.2`` with ``b = 5 d`` (IdePHICS/benefit-reusing-batch, ``simulation.py``); Arnaboldi et al. take a
  ReLU student, ``h_3`` target, ``b = 1``, ``gamma = 0.1 / d``, two steps per sample, ``25 d`` samples at ``d = 4096,
  8192`` (``eta_scale = 0.1``, IdePHICS/Repetita-Iuvant, ``hyperparameters/paper-plots/fig_otheralgos/
  TwoSteps.yaml``), and ``b = 2 d``, ``eta_scale = 0.1`` for their large-batch figure.  The student is the teacher's
  link or a ReLU (``student``, :data:`STUDENTS`): a ReLU has no ``h_3`` component, so online SGD cannot learn
  ``h_3`` with it at all and what it learns comes from the reuse alone (their Figure 1); the teacher's ``h_3`` as
  student did not recover under reuse here (docs/sgd_exponents.md).

Two exact simulations of the same chain (:func:`simulate`):

* ``full``: ``x ~ N(0, I_d)`` drawn per batch from ``fold_in(key, t)`` (streamed: memory ``O(b d)`` whatever ``n``),
  ``w`` in ``R^d``.
* ``reduced``: the law of ``m_t = <w_t, u>`` is that of a Markov chain (the update commutes with every rotation
  fixing ``u``), so each batch is drawn in the span of ``u``, ``w`` and the batch: coordinates ``(x_u, x_v)`` and, for
  the rest of each ``x_i`` in the ``d - 2`` other directions, the rows of the Bartlett factor of their Gram matrix
  (``L[j, j]^2 ~ chi^2_(d-2-j)``, ``N(0, 1)`` below the diagonal): the inner products and norms the protocols use
  have their exact joint law.  Online SGD uses only ``sum_i c_i x_i``, whose rest is ``N(0, sum c_i^2 I_(d-2))``:
  one ``chi^2_(d-2)`` per batch.  Cost per batch ``O(b)`` (online) or ``O(b^2)``, not ``O(b d)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from scipy import special

PROTOCOLS = ("online", "smoothed", "reuse")
#: The student's activation: the teacher's own link (known link) or a ReLU (the papers' batch-reuse student).
STUDENTS = ("teacher", "relu")
#: ``auto``: ``full`` for small batches (``b d`` numbers), ``reduced`` beyond (:mod:`reprjax.methods.sgd_runs`).
SIMULATIONS = ("full", "reduced", "auto")
#: Gauss-Jacobi nodes of the smoothing average over ``t`` (exact for polynomial links of degree < 2 * 24).
SMOOTHING_NODES = 24

Link = Callable[[Array], Array]


def step_scale(protocol: str, k: int, d: int, lam_scale: float = 1.0) -> float:
    """``s(d)`` of ``eta = eta_scale * b * s(d)`` (module docstring); ``k``: information exponent (``online``,
    ``smoothed``) or generative exponent (``reuse``)."""
    if protocol == "online":
        return d ** (-k / 2) if k >= 3 else 1.0 / d
    if protocol == "smoothed":
        lam = lam_scale * d**0.25
        return d ** (-k / 2) * lam ** (2 * k - 2) if k >= 2 else lam / d
    return 1.0 / d


def theory_samples(protocol: str, k_info: int, k_gen: int, d: int) -> tuple[float, float, bool]:
    """``(n(d), exponent, log)``: the sample count the theorem states, its power of ``d`` and whether a ``log d``
    factor goes with it (module docstring; ``reuse`` beyond ``k_g = 2`` is not covered by the references: ``k_g -
    1``, online SGD on the best label transform, is given)."""
    k = k_gen if protocol == "reuse" else k_info
    if k <= 1:
        return float(d), 1.0, False
    if k == 2:
        return d * math.log(d), 1.0, True
    power = k / 2 if protocol == "smoothed" else k - 1.0
    return float(d) ** power, power, False


@functools.lru_cache(maxsize=64)
def jacobi_rule(d: int, nodes: int = SMOOTHING_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) of ``t`` with density ``~ (1 - t^2)^((d-4)/2)`` on ``[-1, 1]``."""
    alpha = (d - 4) / 2.0
    t, w = special.roots_jacobi(nodes, alpha, alpha)
    return t.astype(np.float32), (w / w.sum()).astype(np.float32)


def relu(a: Array) -> Array:
    """The ReLU student activation ``max(a, 0)``."""
    return jnp.maximum(a, 0.0)


def _derivative(link: Link) -> Link:
    return jax.vmap(jax.grad(lambda a: link(a)))


def retract(w: Float[Array, " D"], eta: Float[Array, ""], g: Float[Array, " D"]) -> Float[Array, " D"]:
    """``normalise(w - eta P_w g)``: one spherical step along the tangent part of ``g``."""
    tangent = g - jnp.dot(g, w) * w
    new = w - eta * tangent
    return new / jnp.linalg.norm(new)


def plain_coefficients(w: Float[Array, " D"], x: Float[Array, "b D"], y: Float[Array, " b"],
                       link: Link) -> Float[Array, " b"]:
    """``c_i = -y_i sigma'(<w, x_i>)``: the correlation loss's gradient is ``c_i x_i`` (before projection)."""
    return -y * _derivative(link)(x @ w)


def smoothed_coefficients(w: Float[Array, " D"], x: Float[Array, "b D"], y: Float[Array, " b"], link: Link,
                          lam: Float[Array, ""], d: int) -> Float[Array, " b"]:
    """``c_i`` with ``grad_sphere L_lambda(w; x_i, y_i) = c_i P_w x_i`` (module docstring): with ``a = <w, x>``,
    ``rho = |P_w x|``, ``kappa = sqrt(1 + lambda^2)`` and ``s_q = (a + lambda rho t_q) / kappa``,
    ``c = -(y / kappa) sum_q omega_q sigma'(s_q) (1 - a lambda t_q / rho)``."""
    t, omega = (jnp.asarray(v) for v in jacobi_rule(d))
    a = x @ w
    rho = jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=1) - a * a, 1e-30))
    kappa = jnp.sqrt(1.0 + lam * lam)
    s = (a[:, None] + lam * rho[:, None] * t[None, :]) / kappa
    ds = _derivative(link)(s.reshape(-1)).reshape(s.shape)
    return -(y / kappa) * jnp.sum(omega * ds * (1.0 - a[:, None] * lam * t[None, :] / rho[:, None]), axis=1)


def batch_update(protocol: str, w: Float[Array, " D"], x: Float[Array, "b D"], y: Float[Array, " b"], link: Link,
                 eta: Float[Array, ""], passes: int = 1, lam: Float[Array, ""] | float = 0.0,
                 d: int | None = None) -> Float[Array, " D"]:
    """One batch of ``protocol``: ``w <- retract(w, eta, mean_i c_i x_i)``, ``passes`` times on the same batch for
    ``reuse`` (once otherwise); ``d`` is the ambient dimension of the smoothing rule (default ``x.shape[1]``)."""
    def once(v: Float[Array, " D"]) -> Float[Array, " D"]:
        if protocol == "smoothed":
            c = smoothed_coefficients(v, x, y, link, jnp.asarray(lam, jnp.float32), d or x.shape[1])
        else:
            c = plain_coefficients(v, x, y, link)
        return retract(v, eta, c @ x / x.shape[0])

    for _ in range(passes if protocol == "reuse" else 1):
        w = once(w)
    return w


#: Proposals of :func:`chi_square`: each is accepted with probability > 0.95 (shape >= 1), so all of them are rejected
#: with probability < 0.05^8 ~ 4e-11 (the last proposal is then kept).
GAMMA_PROPOSALS = 8


def chi_square(key: PRNGKeyArray, df: Float[Array, "..."]) -> Float[Array, "..."]:
    """``chi^2_df`` draws as ``2 Gamma(df / 2)`` by Marsaglia & Tsang (2000) with a fixed number of proposals
    (:data:`GAMMA_PROPOSALS`) instead of ``jax.random.chisquare``'s rejection loop, which costs seconds of compile time
    per program; shapes below 1 use ``Gamma(a) = Gamma(a + 1) U^(1/a)``."""
    df = jnp.asarray(df, jnp.float32)
    a = df / 2.0
    boost = a < 1.0
    shape = jnp.where(boost, a + 1.0, a)
    k_x, k_u, k_b = jax.random.split(key, 3)
    x = jax.random.normal(k_x, (*df.shape, GAMMA_PROPOSALS))
    u = jax.random.uniform(k_u, (*df.shape, GAMMA_PROPOSALS), minval=1e-38)
    dd = (shape - 1.0 / 3.0)[..., None]
    v = (1.0 + x / jnp.sqrt(9.0 * dd)) ** 3
    ok = (v > 0) & (jnp.log(u) < 0.5 * x * x + dd - dd * v + dd * jnp.log(jnp.where(v > 0, v, 1.0)))
    first = jnp.where(ok.any(axis=-1), jnp.argmax(ok, axis=-1), GAMMA_PROPOSALS - 1)
    g = jnp.take_along_axis(dd * jnp.maximum(v, 0.0), first[..., None], axis=-1)[..., 0]
    g = jnp.where(boost, g * jax.random.uniform(k_b, df.shape, minval=1e-38) ** (1.0 / a), g)
    return 2.0 * g


def bartlett_rows(key: PRNGKeyArray, b: int, dim: int) -> Float[Array, "b k"]:
    """Rows whose Gram matrix has the law of the Gram matrix of ``b`` i.i.d. ``N(0, I_dim)`` vectors
    (``k = min(b, dim)``): ``L[j, j] = sqrt(chi^2_(dim - j))``, ``N(0, 1)`` below the diagonal, 0 above."""
    k = min(b, dim)
    k_off, k_diag = jax.random.split(key)
    low = jnp.tril(jax.random.normal(k_off, (b, k)), -1)
    diag = jnp.sqrt(chi_square(k_diag, jnp.arange(dim, dim - k, -1, dtype=jnp.float32)))
    return low + jnp.eye(b, k) * diag[None, :]


def initial_overlap(key: PRNGKeyArray, d: int) -> Float[Array, ""]:
    """``<w_0, u>`` for ``w_0`` uniform on the sphere: ``g / sqrt(g^2 + chi^2_(d-1))``."""
    k1, k2 = jax.random.split(key)
    g = jax.random.normal(k1)
    return g / jnp.sqrt(g * g + chi_square(k2, jnp.float32(d - 1)))


def reduced_update(protocol: str, key: PRNGKeyArray, m: Float[Array, ""], b: int, d: int, teacher: Link,
                   link: Link, eta: Float[Array, ""], passes: int = 1,
                   lam: Float[Array, ""] | float = 0.0) -> Float[Array, ""]:
    """``m`` after one batch of ``protocol`` in the reduced coordinates (module docstring): the law of
    :func:`batch_update` in ``R^d`` with ``u = e_0`` and ``w = (m, sqrt(1 - m^2), 0, ...)``."""
    k_plane, k_rest = jax.random.split(key)
    plane = jax.random.normal(k_plane, (b, 2))
    y = teacher(plane[:, :1])
    s = jnp.sqrt(jnp.maximum(1.0 - m * m, 0.0))
    if protocol == "online":
        w = jnp.stack([m, s, 0.0])
        c = plain_coefficients(w[:2], plane, y, link)
        rest = jnp.sqrt(jnp.sum(c * c) * chi_square(k_rest, jnp.float32(d - 2))) / b
        return retract(w, eta, jnp.concatenate([c @ plane / b, rest[None]]))[0]
    x = jnp.concatenate([plane, bartlett_rows(k_rest, b, d - 2)], axis=1)
    w = jnp.zeros((x.shape[1],)).at[0].set(m).at[1].set(s)
    return batch_update(protocol, w, x, y, link, eta, passes, lam, d)[0]
