"""The sweep's methods ``sgd_online``, ``sgd_smoothed`` and ``sgd_reuse``: one neuron from a uniformly random
direction, trained by :mod:`reprjax.methods.sgd_protocols` until ``|<w, u>|`` reaches ``level`` (weak recovery) or
the sample budget runs out; the samples to recovery and the overlap trajectory are the row.

Per run (``d`` and the target's exponents are static, so everything below is fixed when the program is traced):

* ``k`` = the target's information exponent (``online``, ``smoothed``) or generative exponent (``reuse``), from
  :mod:`reprjax.problem.exponents` on the target's link (a catalogue ``MultiIndexTarget`` counts as its Hermite
  terms with coefficient 1: exact for ``single_index``);
* the theorem's sample count ``n_th(d)`` (:func:`reprjax.methods.sgd_protocols.theory_samples`), the batch
  ``b = 2^round(log2(n_th / steps))`` clipped to ``[1, max_batch]`` (about ``steps`` batches per ``n_th``; or
  ``b = round(batch_over_d * d)`` when ``batch_over_d > 0``, the batch-reuse papers' ``n_b ~ d``), the
  budget ``min(n, budget * n_th)`` samples (the row's ``n`` is a cap), ``eta = eta_scale * b * s(d)``;
* a ``lax.while_loop`` over batches that stops at the first batch where ``|m| >= level`` (under ``vmap`` the loop runs
  until every seed of the group has stopped or spent its budget; a stopped run no longer changes).

Outcomes: ``recovery_n`` (samples seen when ``|m|`` first reached ``level``; the budget when it never did, with
``recovered = 0``), ``path_n`` / ``path_overlap`` (``|m|`` after about ``records`` log-spaced batch counts; ``-1``
after the run stopped), the population errors of the final student (``test_nmse``, ``test_mae``: 2-d Gauss-Hermite
quadrature of ``sigma(z_1)`` against ``student(m z_1 + sqrt(1 - m^2) z_2)``; ``val_mse`` repeats ``test_nmse``: there is
no split) and ``alignment = m^2``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxtyping import Array, Float, Int, PRNGKeyArray

from reprjax import _validate
from reprjax.methods import sgd_protocols as protocols
from reprjax.methods.contract import Metrics
from reprjax.methods.registry import Cost, Method, register
from reprjax.problem import exponents as exps
from reprjax.problem.links import LinkTarget
from reprjax.problem.targets import MultiIndexTarget

#: ``simulation = "auto"`` runs ``full`` when a batch holds at most this many numbers (``b d``), else ``reduced``.
AUTO_FULL = 8192
#: Gauss-Hermite nodes per axis of the population errors.
ERROR_NODES = 48


@struct.dataclass
class RecoveryConfig:
    """The fields every recovery run shares (a single neuron here, a committee in
    :mod:`reprjax.methods.sgd_committee`).

    Attributes:
      n: cap on the sample budget.
      eta_scale: ``delta`` of ``eta = delta * b * s(d)`` (module docstring).
      level: weak recovery is an overlap ``>= level`` (in (0, 1)).
      budget: samples allowed, as a multiple of the theorem's ``n_th(d)``.
      steps: batches per ``n_th(d)`` (sets the batch); max_batch: largest batch; records: points of the trajectory;
      max_batches: most batches a run takes (a compute cap: the budget becomes ``max_batches * b`` when smaller,
      and the row's ``n_budget`` says so).
    """

    n: int = struct.field(pytree_node=False, default=2**31 - 1)
    eta_scale: float = 0.5
    level: float = 0.5
    budget: float = struct.field(pytree_node=False, default=16.0)
    steps: int = struct.field(pytree_node=False, default=256)
    max_batch: int = struct.field(pytree_node=False, default=1024)
    records: int = struct.field(pytree_node=False, default=48)
    max_batches: int = struct.field(pytree_node=False, default=20_000)

    def __post_init__(self) -> None:
        _validate.check_int("n", self.n, low=2)
        _validate.check_number("eta_scale", self.eta_scale, low=0.0, low_open=True)
        check_recovery_settings(self)


@struct.dataclass
class SGDConfig(RecoveryConfig):
    """One run of a single-neuron protocol (module docstring): the fields of :class:`RecoveryConfig` and

    Attributes:
      protocol, simulation: :data:`PROTOCOLS`, :data:`SIMULATIONS`.
      passes: GD steps per batch of ``reuse`` (>= 2).
      student: the student's activation, :data:`~reprjax.methods.sgd_protocols.STUDENTS` (``teacher``: the
        target's link).
      batch_over_d: ``> 0``: the batch is ``round(batch_over_d * d)`` (not clipped by ``max_batch``); ``0``: the
        ``steps`` rule (module docstring).
      lam_scale: ``lambda = lam_scale * d^(1/4)`` (``smoothed``).
    """

    protocol: str = struct.field(pytree_node=False, default="online")
    simulation: str = struct.field(pytree_node=False, default="auto")
    passes: int = struct.field(pytree_node=False, default=2)
    student: str = struct.field(pytree_node=False, default="teacher")
    batch_over_d: float = struct.field(pytree_node=False, default=0.0)
    lam_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _validate.check_choice("protocol", self.protocol, protocols.PROTOCOLS)
        _validate.check_choice("simulation", self.simulation, protocols.SIMULATIONS)
        _validate.check_int("passes", self.passes, low=2)
        _validate.check_choice("student", self.student, protocols.STUDENTS)
        _validate.check_number("batch_over_d", self.batch_over_d, low=0.0)
        _validate.check_number("lam_scale", self.lam_scale, low=0.0, low_open=True)


def check_recovery_settings(config: Any) -> None:
    """The fields every recovery run shares (``level`` in (0, 1), ``budget`` > 0, and the positive counts ``steps``,
    ``max_batch``, ``records``, ``max_batches``): a ``ValueError`` naming the first one out of range."""
    _validate.check_number("level", config.level, low=0.0, high=1.0, low_open=True)
    level = np.asarray(config.level) if _validate.is_concrete(config.level) else None
    if level is not None and level.size == 1 and float(level.reshape(())) >= 1:
        raise ValueError(f"level must be in (0, 1), got {config.level}")
    _validate.check_number("budget", config.budget, low=0.0, low_open=True)
    for name in ("steps", "max_batch", "records", "max_batches"):
        _validate.check_int(name, getattr(config, name), low=1)


@struct.dataclass
class SGDMetrics(Metrics):
    """:class:`~reprjax.methods.contract.Metrics` plus the recovery outcomes (module docstring)."""

    recovery_n: Float[Array, ""] = None
    recovered: Float[Array, ""] = None
    unrecovered: Float[Array, ""] = None
    n_budget: Float[Array, ""] = None
    batch: Float[Array, ""] = None
    eta: Float[Array, ""] = None
    initial_overlap: Float[Array, ""] = None
    final_overlap: Float[Array, ""] = None
    path_n: Int[Array, " K"] = None
    path_overlap: Float[Array, " K"] = None


@functools.lru_cache(maxsize=64)
def _link_exponents(link: Any) -> tuple[int, int]:
    e = exps.exponents(link, 1)
    if e.information is None or e.generative is None:
        raise ValueError(f"the link {link!r} has no exponent up to degree {e.searched}")
    return int(e.information), int(e.generative)


def target_exponents(target: Any) -> tuple[int, int]:
    """``(information, generative)`` exponents of a single-index target from its static structure."""
    if target.r != 1:
        raise ValueError(f"the SGD protocols learn single-index targets (r = 1), got r = {target.r}")
    if isinstance(target, LinkTarget):
        return _link_exponents(target.link)
    if isinstance(target, MultiIndexTarget):
        return _link_exponents(exps.PolynomialLink(tuple(target.alphas), (1.0,) * len(target.alphas)))
    raise ValueError(f"no exponents for a target of type {type(target).__name__}")


@functools.lru_cache(maxsize=256)
def plan(protocol: str, k_info: int, k_gen: int, d: int, n_cap: int, budget: float, steps: int,
         max_batch: int, records: int, max_batches: int = 20_000,
         batch_over_d: float = 0.0) -> tuple[int, int, int, np.ndarray]:
    """``(batch, budget in samples, batches, recorded batch counts)`` of a run (module docstring)."""
    n_th, _, _ = protocols.theory_samples(protocol, k_info, k_gen, d)
    batch = int(min(max(2 ** round(math.log2(max(n_th / steps, 1.0))), 1), max_batch))
    if batch_over_d > 0:
        batch = max(1, round(batch_over_d * d))
    n_budget = int(min(n_cap, math.ceil(budget * n_th)))
    batches = min(max(1, math.ceil(n_budget / batch)), max_batches)
    n_budget = min(n_budget, batches * batch)
    recs = np.unique(np.round(np.geomspace(1, batches, records)).astype(np.int64))
    return batch, n_budget, batches, recs


def _errors(link: Any, m: Float[Array, ""], student: Any = None) -> tuple[Float[Array, ""], Float[Array, ""]]:
    z, w = np.polynomial.hermite_e.hermegauss(ERROR_NODES)
    z, w = jnp.asarray(z, jnp.float32), jnp.asarray(w / w.sum(), jnp.float32)
    s = jnp.sqrt(jnp.maximum(1.0 - m * m, 0.0))
    f = link(z)
    pred = (student or link)(m * z[:, None] + s * z[None, :])
    ww = w[:, None] * w[None, :]
    second = jnp.sum(w * f * f)
    return jnp.sum(ww * (pred - f[:, None]) ** 2) / second, jnp.sum(ww * jnp.abs(pred - f[:, None]))


def simulate(key: PRNGKeyArray, target: Any, config: SGDConfig) -> SGDMetrics:
    """Train one neuron on ``target`` by ``config.protocol`` until weak recovery or the budget (module docstring)."""
    d = target.d
    k_info, k_gen = target_exponents(target)
    k = k_gen if config.protocol == "reuse" else k_info
    batch, n_budget, batches, recs = plan(config.protocol, k_info, k_gen, d, config.n, config.budget,
                                          config.steps, config.max_batch, config.records, config.max_batches,
                                          config.batch_over_d)
    lam = config.lam_scale * d**0.25
    eta = config.eta_scale * batch * protocols.step_scale(config.protocol, k, d, config.lam_scale)

    def teacher_link(a: Array) -> Array:
        return target.g(a[..., None])

    link = teacher_link if config.student == "teacher" else protocols.relu

    k_init, k_data = jax.random.split(key)
    rec = jnp.asarray(recs, jnp.int32)

    if config.simulation == "full" or (config.simulation == "auto" and batch * d <= AUTO_FULL):
        u = target.U[0]
        w0 = jax.random.normal(k_init, (d,))
        state0 = w0 / jnp.linalg.norm(w0)
        overlap = lambda w: jnp.dot(w, u)  # noqa: E731

        def advance(w: Array, t: Array) -> Array:
            x = jax.random.normal(jax.random.fold_in(k_data, t), (batch, d))
            return protocols.batch_update(config.protocol, w, x, target(x), link, eta, config.passes, lam, d)
    else:
        state0 = protocols.initial_overlap(k_init, d)
        overlap = lambda m: m  # noqa: E731

        def advance(m: Array, t: Array) -> Array:
            return protocols.reduced_update(config.protocol, jax.random.fold_in(k_data, t), m, batch, d,
                                            target.g, link, eta, config.passes, lam)

    def cond(carry: tuple) -> Array:
        t, _, hit, _ = carry
        return (t < batches) & (hit < 0)

    def body(carry: tuple) -> tuple:
        t, state, hit, path = carry
        state = advance(state, t)
        m = jnp.abs(overlap(state))
        hit = jnp.where((hit < 0) & (m >= config.level), t + 1, hit)
        j = jnp.clip(jnp.searchsorted(rec, t + 1), 0, rec.shape[0] - 1)
        path = path.at[j].set(jnp.where(rec[j] == t + 1, m, path[j]))
        return t + 1, state, hit, path

    m0 = overlap(state0)
    carry = (jnp.asarray(0, jnp.int32), state0, jnp.asarray(-1, jnp.int32), -jnp.ones(rec.shape, jnp.float32))
    t, state, hit, path = jax.lax.while_loop(cond, body, carry)
    m = overlap(state)
    recovered = hit > 0
    nmse, mae = _errors(teacher_link, m, link)
    zero = jnp.float32(0.0)
    return SGDMetrics(
        test_nmse=nmse, test_mae=mae, val_mse=nmse, lam=jnp.float32(0.0), lam_position=jnp.float32(0.5),
        edge_val_drop=jnp.float32(0.0), alignment=m * m, failed=~jnp.isfinite(m), test_nmse_se=zero, test_mae_se=zero,
        val_mse_se=zero,  # population values: no test-sample error
        recovery_n=jnp.where(recovered, hit * batch, n_budget).astype(jnp.float32),
        recovered=recovered.astype(jnp.float32), unrecovered=1.0 - recovered.astype(jnp.float32),
        n_budget=jnp.float32(n_budget), batch=jnp.float32(batch),
        eta=jnp.asarray(eta, jnp.float32), initial_overlap=jnp.abs(m0), final_overlap=jnp.abs(m),
        path_n=rec * batch, path_overlap=path)


def _make_config(protocol: str):
    def make(d: int, n: int, width: int, hyper: dict[str, Any]) -> SGDConfig:
        """The config of one run; ``width`` is not used: the student is one neuron (the study's grid says 1)."""
        return SGDConfig(n=n, protocol=protocol, **hyper)
    return make


def _cost(config: SGDConfig, d: int) -> Cost:
    batch = max(config.max_batch, round(config.batch_over_d * d))
    return Cost(4.0 * batch * (d + 2 * protocols.SMOOTHING_NODES), 0)


#: Hyper-parameters every protocol takes; ``smoothed`` adds ``lam_scale``, ``reuse`` adds ``passes``.
COMMON_HYPER = frozenset({"simulation", "eta_scale", "level", "budget", "steps", "max_batch", "records",
                          "max_batches", "student"})

for _protocol, _label, _extra in (("online", "online SGD", ()), ("smoothed", "smoothed online SGD", ("lam_scale",)),
                                  ("reuse", "SGD reusing each batch", ("passes", "batch_over_d"))):
    register(Method(f"sgd_{_protocol}", simulate, _make_config(_protocol), SGDConfig, outcomes=SGDMetrics,
                    hyper=COMMON_HYPER | set(_extra), label=_label, supports_mask=False, trains_first_layer=True,
                    cost=_cost), replace=True)
