"""A committee of ``r`` neurons learning a target with ``r`` directions by online SGD (issue 26, item 1): the sweep's
method ``sgd_committee``; docs/sgd_exponents.md.

Target ``f*(x) = g(U x)`` with ``U`` ``r x d`` orthonormal (e.g. ``sum_i h_k(z_i) / sqrt(r)``, the study's
``he2x2``, ``he3x2``).  Student ``f(x) = sum_j sigma(<w_j, x>) / sqrt(r)`` with ``sigma`` the target's per-direction
link (``h_k``; known link, as the single neuron of :mod:`reprjax.methods.sgd_protocols`), started at a uniformly random
``r x d`` matrix ``W`` with orthonormal rows (:func:`reprjax.problem.targets.random_orthonormal`), trained on the
**square loss** ``(f(x) - y)^2 / 2`` (the neurons interact through the residual; under the correlation loss they would
be ``r`` independent single neurons, free to find the same direction), online: a fresh batch of ``b`` samples per
step, each row retracted to the sphere after its step (``w_j <- normalise(w_j - eta P_{w_j} G_j)``, ``G`` the batch
mean of the gradient), as the single-neuron protocols.

Step and samples (Ben Arous, Gheissari & Jagannath 2021 per neuron; Abbe, Boix-Adsera & Misiakiewicz 2023 for a sum
of separate directions, whose leap is ``k``): ``eta = eta_scale * b * s(d)`` with ``s = d^(-k/2)`` (``k >= 3``) or
``1/d`` (``k <= 2``), ``k`` the information exponent of the per-direction link, and ``n ~ d^(k-1)`` (``k >= 3``),
``d log d`` (``k = 2``).  Each neuron's drift along its direction is ``1/r`` of the single neuron's (the ``1/sqrt(r)``
of ``f`` and of ``f*``), as is its gradient's variance, so the condition on ``eta`` and the exponent are those of
one neuron; the constant is ``r`` times larger.

The overlap: the smallest singular value of ``W U^T`` (``r x r``), 1 when the rows span ``span(U)`` orthonormally, 0
when two rows found the same direction or one found none; weak recovery is its reaching ``level``.  The rows also
carry the principal cosines between ``span(W)`` and ``span(U)`` at the end (``final_cosines``) and the final error on
:data:`TEST_SAMPLES` fresh samples (``test_nmse`` with its standard error).  Simulation: ``x ~
N(0, I_d)`` per batch from ``fold_in(key, t)`` (streamed, memory ``O(b d)``); there is no reduced simulation.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.maths.hermite import hermite_values
from reprjax.methods import sgd_protocols as protocols
from reprjax.methods import sgd_runs
from reprjax.methods.registry import Cost, Method, register
from reprjax.problem import exponents as exps
from reprjax.problem.targets import MultiIndexTarget, random_orthonormal


#: Fresh test samples of the final committee's error (``test_nmse``: squared error over the exact ``E[f*^2]``, with
#: its standard error; ``val_mse`` repeats it: there is no split).
TEST_SAMPLES = 8192


@struct.dataclass
class CommitteeConfig(sgd_runs.RecoveryConfig):
    """One committee run (module docstring): the fields of :class:`reprjax.methods.sgd_runs.RecoveryConfig`
    (``level``: on the smallest singular value of ``W U^T``)."""


@struct.dataclass
class CommitteeMetrics(sgd_runs.SGDMetrics):
    """:class:`reprjax.methods.sgd_runs.SGDMetrics` (overlap: the smallest singular value of ``W U^T``) plus the
    final principal cosines between ``span(W)`` and ``span(U)``."""

    final_cosines: Float[Array, " r"] = None


def separable_link(target: MultiIndexTarget) -> tuple[tuple[int, ...], Float[Array, " K"]]:
    """``(degrees, coefficients)`` of the per-direction link when ``g(z) = sum_i sum_t c_t h_{k_t}(z_i) / sqrt(r)``
    with the same terms in every direction (the committee's student shares it); ``ValueError`` otherwise.  The
    degrees come from the static multi-indices; the coefficients are those of the first direction times
    ``sqrt(r)`` (traceable; checked equal across directions when concrete)."""
    r = target.r
    per_dir: dict[int, list[tuple[int, int]]] = {i: [] for i in range(r)}
    for t, alpha in enumerate(target.alphas):
        active = [i for i, a in enumerate(alpha) if a]
        if len(active) != 1:
            raise ValueError(f"the committee needs a sum of per-direction terms; the target has the term {alpha}")
        per_dir[active[0]].append((alpha[active[0]], t))
    degrees = tuple(sorted(k for k, _ in per_dir[0]))
    if not degrees or any(tuple(sorted(k for k, _ in per_dir[i])) != degrees for i in range(r)):
        raise ValueError("the committee needs the same per-direction link in every direction, got degrees "
                         f"{[sorted(k for k, _ in per_dir[i]) for i in range(r)]}")
    index = [[dict(per_dir[i])[k] for k in degrees] for i in range(r)]
    coeffs = target.coeffs[jnp.asarray(index)] * math.sqrt(r)
    if _validate.is_concrete(coeffs) and not np.allclose(np.asarray(coeffs), np.asarray(coeffs)[:1], rtol=1e-5):
        raise ValueError(f"the committee needs the same per-direction link in every direction, got coefficients "
                         f"{np.asarray(coeffs).tolist()}")
    return degrees, coeffs[0]


def committee_exponent(target: MultiIndexTarget) -> int:
    """The information exponent of the per-direction link (:func:`separable_link`; its degrees, coefficient 1 each,
    as :func:`reprjax.methods.sgd_runs.target_exponents` counts a catalogue target)."""
    degrees, _ = separable_link(target)
    return exps.information_exponent(exps.PolynomialLink(tuple((k,) for k in degrees), (1.0,) * len(degrees)))


def _link(degrees: tuple[int, ...], coeffs: Float[Array, " K"]) -> Any:
    """``sigma(a) = sum_t c_t h_{k_t}(a)`` (normalised Hermite polynomials)."""
    pick = jnp.asarray(degrees)

    def link(a: Array) -> Array:
        return hermite_values(a, max(degrees))[..., pick] @ jnp.asarray(coeffs, jnp.float32)
    return link


def committee_update(w: Float[Array, "r D"], x: Float[Array, "b D"], y: Float[Array, " b"], link: Any,
                     eta: Float[Array, ""] | float) -> Float[Array, "r D"]:
    """One online step of the committee (module docstring): ``G_j = mean_i (f(x_i) - y_i) sigma'(<w_j, x_i>) x_i /
    sqrt(r)``, ``w_j <- normalise(w_j - eta P_{w_j} G_j)``."""
    r = w.shape[0]
    a = x @ w.T
    da = jax.vmap(jax.vmap(jax.grad(link)))(a)
    resid = jnp.sum(link(a), axis=1) / math.sqrt(r) - y
    g = (resid[:, None] * da).T @ x / (x.shape[0] * math.sqrt(r))
    tangent = g - jnp.sum(g * w, axis=1, keepdims=True) * w
    new = w - eta * tangent
    return new / jnp.linalg.norm(new, axis=1, keepdims=True)


def subspace_overlap(w: Float[Array, "r D"], u: Float[Array, "r D"]) -> Float[Array, ""]:
    """The smallest singular value of ``W U^T``."""
    return jnp.linalg.svd(w @ u.T, compute_uv=False)[-1]


def principal_cosines(w: Float[Array, "r D"], u: Float[Array, "r D"]) -> Float[Array, " r"]:
    """Cosines of the principal angles between ``span(W)`` and ``span(U)`` (largest first)."""
    q, _ = jnp.linalg.qr(w.T)
    return jnp.linalg.svd(q.T @ u.T, compute_uv=False)


def simulate(key: PRNGKeyArray, target: MultiIndexTarget, config: CommitteeConfig) -> CommitteeMetrics:
    """Train the committee on ``target`` by online SGD until the overlap reaches ``level`` or the budget is spent."""
    d, r = target.d, target.r
    degrees, coeffs = separable_link(target)
    k = committee_exponent(target)
    batch, n_budget, batches, recs = sgd_runs.plan("online", k, k, d, config.n, config.budget, config.steps,
                                                   config.max_batch, config.records, config.max_batches)
    eta = config.eta_scale * batch * protocols.step_scale("online", k, d)
    link = _link(degrees, coeffs)
    k_init, k_data, k_test = jax.random.split(key, 3)
    rec = jnp.asarray(recs, jnp.int32)
    u = target.U
    w0 = random_orthonormal(k_init, r, d)

    def cond(carry: tuple) -> Array:
        t, _, hit, _ = carry
        return (t < batches) & (hit < 0)

    def body(carry: tuple) -> tuple:
        t, w, hit, path = carry
        x = jax.random.normal(jax.random.fold_in(k_data, t), (batch, d))
        w = committee_update(w, x, target(x), link, eta)
        m = subspace_overlap(w, u)
        hit = jnp.where((hit < 0) & (m >= config.level), t + 1, hit)
        j = jnp.clip(jnp.searchsorted(rec, t + 1), 0, rec.shape[0] - 1)
        path = path.at[j].set(jnp.where(rec[j] == t + 1, m, path[j]))
        return t + 1, w, hit, path

    carry = (jnp.asarray(0, jnp.int32), w0, jnp.asarray(-1, jnp.int32), -jnp.ones(rec.shape, jnp.float32))
    _, w, hit, path = jax.lax.while_loop(cond, body, carry)
    m = subspace_overlap(w, u)
    recovered = hit > 0
    zero = jnp.float32(0.0)
    x = jax.random.normal(k_test, (TEST_SAMPLES, d))
    err = jnp.sum(link(x @ w.T), axis=1) / math.sqrt(r) - target(x)
    second = target.second_moment()
    sq, ab = err * err / second, jnp.abs(err)
    nmse, mae = jnp.mean(sq), jnp.mean(ab)
    nmse_se, mae_se = jnp.std(sq) / math.sqrt(TEST_SAMPLES), jnp.std(ab) / math.sqrt(TEST_SAMPLES)
    return CommitteeMetrics(
        test_nmse=nmse, test_mae=mae, val_mse=nmse, lam=zero, lam_position=jnp.float32(0.5), edge_val_drop=zero,
        alignment=m * m, failed=~jnp.isfinite(m) | ~jnp.isfinite(nmse), test_nmse_se=nmse_se, test_mae_se=mae_se,
        val_mse_se=nmse_se,
        recovery_n=jnp.where(recovered, hit * batch, n_budget).astype(jnp.float32),
        recovered=recovered.astype(jnp.float32), unrecovered=1.0 - recovered.astype(jnp.float32),
        n_budget=jnp.float32(n_budget), batch=jnp.float32(batch), eta=jnp.asarray(eta, jnp.float32),
        initial_overlap=subspace_overlap(w0, u), final_overlap=m, path_n=rec * batch, path_overlap=path,
        final_cosines=principal_cosines(w, u))


def _make_config(d: int, n: int, width: int, hyper: dict[str, Any]) -> CommitteeConfig:
    """The config of one run; ``width`` is not used: the committee has ``r`` neurons, ``r`` the target's."""
    return CommitteeConfig(n=n, **hyper)


def _cost(config: CommitteeConfig, d: int) -> Cost:
    return Cost(8.0 * config.max_batch * d, 0)


register(Method("sgd_committee", simulate, _make_config, CommitteeConfig, outcomes=CommitteeMetrics,
                hyper=frozenset({"eta_scale", "level", "budget", "steps", "max_batch", "records", "max_batches"}),
                label="online SGD, committee of r neurons", supports_mask=False, trains_first_layer=True,
                cost=_cost), replace=True)
