"""The run contract: what every method shares (docs/architecture.md, "The path of one run").

Every method of the registry (:mod:`reprjax.methods.registry`) is a pure ``(key, target, config) -> Metrics``
function.  This module owns the pieces they have in common:

* :class:`Predictor`: the trained network plus the label pre-processing terms, ``f(x) + alpha + <beta, x>``;
* :func:`label_moments`: the pre-processing itself (docs/setting.md, "Algorithm 1", step 0), ``alpha = mean(y)``,
  ``beta = mean(y x)``, the constant and linear Hermite parts of the labels;
* :class:`Metrics` and :func:`summarise_run`: the row of a run, from the held-out errors of
  :func:`reprjax.methods.scoring.held_out_errors` (the one scoring function) and the chosen ridge strength of the head;
* :func:`score_run`: held-out scoring and the row summary in one place, which every method calls;
* :func:`failed_runs_report` and :func:`mean_over_runs`: a diverged run is named, never averaged silently.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax.methods.scoring import HeldOutErrors, alignment, held_out_errors
from reprjax.problem.data import split_run_key
from reprjax.problem.targets import MultiIndexTarget
from reprjax.network import TwoLayerParams, forward
from reprjax.solvers.head import HeadFit


@struct.dataclass
class Predictor:
    """``f(x) = sum_j a_j act(<w_j, x> + b_j) + alpha + <beta, x>`` (the network plus the pre-processing terms)."""

    params: TwoLayerParams
    alpha: Float[Array, ""]
    beta: Float[Array, " d"]
    activation: str = struct.field(pytree_node=False, default="relu")

    def __call__(self, x: Float[Array, "n d"]) -> Float[Array, " n"]:
        return forward(self.params, x, self.activation) + self.alpha + x @ self.beta


@struct.dataclass
class Metrics:
    """Scalar outcomes of one training run (a row of a results table)."""

    test_nmse: Float[Array, ""]
    test_mae: Float[Array, ""]
    val_mse: Float[Array, ""]
    lam: Float[Array, ""]
    lam_position: Float[Array, ""]  # rank of the chosen strength in its grid: 0 smallest, 1 largest (0.5: one strength)
    edge_val_drop: Float[Array, ""]  # at an edge: relative validation gain over the neighbouring strength (else 0)
    alignment: Float[Array, ""]
    failed: Array  # True when any outcome is NaN/inf (a diverged run: never averaged silently)
    # standard errors of the estimates above (methods/scoring.py; NaN where a method does not measure one)
    test_nmse_se: Float[Array, ""] = float("nan")
    test_mae_se: Float[Array, ""] = float("nan")
    val_mse_se: Float[Array, ""] = float("nan")


def label_moments(
    x: Float[Array, "n d"], y: Float[Array, " n"], weight: Float[Array, " n"] | None = None
) -> tuple[Float[Array, ""], Float[Array, " d"]]:
    """Step 0: ``alpha = mean(y)`` and ``beta = mean(y x)`` (weighted), the constant and linear Hermite parts."""
    w = jnp.ones((x.shape[0],), jnp.float32) if weight is None else weight
    n_eff = jnp.sum(w)
    return jnp.sum(w * y) / n_eff, (w * y) @ x / n_eff


def strength_position(lambdas: Float[Array, " L"], index: Array) -> Float[Array, ""]:
    """Rank of ``lambdas[index]`` among the grid's strengths scaled to ``[0, 1]``: 0 = the smallest, 1 = the
    largest, 0.5 for a one-strength grid.  A choice at 0 or 1 means the validation error was still falling at the
    grid's edge, so the run's error is an upper bound on what the method reaches (the reports count such runs)."""
    size = lambdas.shape[-1]
    if size == 1:
        return jnp.asarray(0.5, jnp.float32)
    below = jnp.sum(lambdas < lambdas[index]).astype(jnp.float32)
    return below / jnp.float32(size - 1)


def edge_validation_drop(lambdas: Float[Array, " L"], val_mse: Float[Array, " L"], index: Array) -> Float[Array, ""]:
    """For a strength chosen at an edge of its grid, ``(val[neighbour] - val[chosen]) / val[chosen]``: how much the
    validation error still fell over the grid's last step (0 inside the grid or for one strength).  A drop below
    ~1e-3 means the error had levelled off and the edge choice costs nothing; a larger one means the grid stops too
    soon (:func:`reprjax.report.tables.strength_edges` counts such runs).  Strength 0 is the ridgeless limit itself:
    nothing lies beyond it, so a choice there gives 0 (resolved)."""
    size = lambdas.shape[-1]
    if size == 1:
        return jnp.asarray(0.0, jnp.float32)
    order = jnp.argsort(lambdas)
    chosen = val_mse[index]
    scale = jnp.maximum(chosen, jnp.finfo(val_mse.dtype).tiny)  # a zero validation error is not a NaN row
    drop_low = (val_mse[order[1]] - chosen) / scale
    drop_high = (val_mse[order[-2]] - chosen) / scale
    drop = jnp.where(index == order[0], drop_low, jnp.where(index == order[-1], drop_high, 0.0))
    return jnp.where(lambdas[index] == 0, 0.0, drop).astype(jnp.float32)


def summarise_run(errors: HeldOutErrors, head: HeadFit, align: Array) -> Metrics:
    """The row of a run: test errors, the chosen strength, its position in the grid and its validation error,
    alignment, failure flag, and the standard errors of the test and validation estimates."""
    val = head.val_mse[head.index]
    lam = head.lambdas[head.index]
    failed = ~(jnp.isfinite(errors.nmse) & jnp.isfinite(errors.mae) & jnp.isfinite(val))
    def se(value: Array | None) -> Array:
        return jnp.asarray(jnp.nan if value is None else value, jnp.float32)

    return Metrics(test_nmse=errors.nmse, test_mae=errors.mae, val_mse=val, lam=lam,
                   lam_position=strength_position(head.lambdas, head.index),
                   edge_val_drop=edge_validation_drop(head.lambdas, head.val_mse, head.index), alignment=align,
                   failed=failed, test_nmse_se=se(errors.nmse_se), test_mae_se=se(errors.mae_se),
                   val_mse_se=se(None if head.val_mse_se is None else head.val_mse_se[head.index]))


def score_run(key: PRNGKeyArray, target: MultiIndexTarget, predict: Any, head: HeadFit, config: Any,
              first_layer: Float[Array, "m d"] | None = None) -> Metrics:
    """The row of a run, the one place every method scores: held-out errors of ``predict`` on ``config.n_test``
    fresh samples of the run's test stream (``split_run_key(key).test``, in chunks of ``config.test_chunk``, under
    ``config.data`` with the run's spike key), then :func:`summarise_run` with the alignment of ``first_layer``
    with ``span(U)`` (NaN for a method without a first layer)."""
    keys = split_run_key(key)
    errors = held_out_errors(keys.test, target, predict, config.n_test, config.test_chunk, config.data,
                             spike_key=keys.spike)
    align = jnp.asarray(jnp.nan, jnp.float32) if first_layer is None else alignment(first_layer, target.U)
    return summarise_run(errors, head, align)


def failed_runs_report(metrics: Metrics, config: Any = None) -> list[str]:
    """One line per failed run in a (possibly vmapped) ``Metrics``: its index and configuration."""
    failed = jnp.atleast_1d(metrics.failed)
    return [f"run {i} diverged (NaN/inf outcome) with config {config}" for i in range(failed.shape[0])
            if bool(failed[i])]


def mean_over_runs(metrics: Metrics, config: Any = None) -> dict[str, float]:
    """Means over stacked runs; raises ``ValueError`` naming the failed runs instead of averaging NaN silently.

    A standard error ``<metric>_se`` becomes the standard error of the mean of the runs' estimates,
    ``sqrt(sum se^2) / k`` (independent test sets), not the mean of the standard errors.
    """
    report = failed_runs_report(metrics, config)
    if report:
        raise ValueError("cannot average failed runs:\n" + "\n".join(report))
    return {k: float(jnp.sqrt(jnp.sum(jnp.square(v))) / jnp.size(v)) if k.endswith("_se") else float(jnp.mean(v))
            for k, v in vars(metrics).items() if k != "failed"}


__all__ = ["Metrics", "Predictor", "edge_validation_drop", "failed_runs_report", "label_moments", "mean_over_runs",
           "score_run", "strength_position", "summarise_run"]
