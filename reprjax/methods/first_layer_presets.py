"""Multi-step first-layer training as sweep methods: ``(key, target, config) -> metrics`` and config builders.

Presets of :class:`reprjax.methods.first_layer.FirstLayerTrainingConfig` (each ``(d, n, width, hyper)``):

* ``one_step``: Algorithm 1's step and head (same ``W_1`` as :func:`reprjax.methods.algorithm1.run` on the same key: the
  output scale and the step's ``1 / a_scale`` cancel), with this module's metrics (spectrum, overlaps);
* ``gd_reuse``: full-batch GD reusing one batch, ``steps=2``, the paper's step size (Dandi et al. 2024);
* ``gd_fresh``: GD with a fresh batch per step, ``steps=4``, GiantStep's ``giant_step`` scaling (Dandi et al. 2023);
* ``online_sgd``: online SGD on the sphere (rows initialised on it and projected back after each step),
  ``batch_size=1``, the ``online`` scaling (Ben Arous et al. 2021).  Measured on ``h_3`` at ``d = 12``,
  ``n = 8192``, ``m = 128``, one seed: without the projection the run diverges from ``eta_scale = 4`` (NaN,
  flagged failed) and its best neuron reaches cosine 0.74 with ``u``; with it, 0.92 at ``eta_scale = 0.25``.

Any field of the config (and the data / network fields, routed by :func:`reprjax.methods.run_config.split_hyper`) can
be set through ``hyper``; the network's output scale defaults to ``mean`` (``a = +-1/m``, the mean-field output of
Arnaboldi et al. and GiantStep): with the paper's ``a = +-1`` the output after one large step is of order
``sqrt(m)`` and dominates the next gradient.
The metrics add, to Algorithm 1's row, overlap summaries of the trained layer and its Hermite spectrum up to degree
:data:`SPECTRUM_DEGREE` (:mod:`reprjax.methods.spectrum`); with ``record_every`` set, the overlap trajectory comes
too, as small arrays (``traj_*`` fields, one entry per record).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float, Int, PRNGKeyArray

from reprjax.methods.contract import Metrics, score_run
from reprjax.problem.data import split_run_key
from reprjax.methods.first_layer import FirstLayerTrainingConfig, TrainingResult, train
from reprjax.methods.run_config import build_config
from reprjax.methods.overlaps import overlaps
from reprjax.methods.spectrum import hermite_spectrum
from reprjax.problem.targets import MultiIndexTarget

#: Largest Hermite degree of the spectrum stored in a run's row (fields ``energy_0 .. energy_4``, each with its
#: standard error ``energy_k_se``).
SPECTRUM_DEGREE = 4


@struct.dataclass(kw_only=True)  # keyword-only: the contract may add defaulted fields to Metrics
class TrainingMetrics(Metrics):
    """One row: the run contract's :class:`~reprjax.methods.contract.Metrics`, plus overlap summaries of ``W_T``
    and its Hermite spectrum (all scalars)."""

    mean_cosine: Float[Array, ""]
    min_best_cosine: Float[Array, ""]  # min over directions k of max over neurons of |cos(w_j, u_k)|
    energy_0: Float[Array, ""]
    energy_1: Float[Array, ""]
    energy_2: Float[Array, ""]
    energy_3: Float[Array, ""]
    energy_4: Float[Array, ""]
    energy_higher: Float[Array, ""]
    energy_perp: Float[Array, ""]
    # standard errors of the spectrum's estimates (methods/spectrum.py)
    energy_0_se: Float[Array, ""]
    energy_1_se: Float[Array, ""]
    energy_2_se: Float[Array, ""]
    energy_3_se: Float[Array, ""]
    energy_4_se: Float[Array, ""]
    energy_perp_se: Float[Array, ""]


@struct.dataclass
class TrainingMetricsWithTrajectory(TrainingMetrics):
    """:class:`TrainingMetrics` plus the overlap trajectory (arrays over the ``K`` records)."""

    traj_steps: Int[Array, " K"] = None
    traj_alignment: Float[Array, " K"] = None
    traj_mean_cosine: Float[Array, " K"] = None
    traj_best_cosine: Float[Array, "K r"] = None
    traj_overlap_sq: Float[Array, "K r"] = None
    traj_q_diag: Float[Array, " K"] = None
    traj_q_offdiag: Float[Array, " K"] = None


def evaluate(key: PRNGKeyArray, target: MultiIndexTarget, result: TrainingResult,
             config: FirstLayerTrainingConfig) -> TrainingMetrics:
    """Test errors on fresh samples, overlaps of ``W_T`` and the predictor's spectrum (keys of ``split_run_key``)."""
    keys = split_run_key(key)
    predictor = result.predictor
    base = score_run(key, target, predictor, result.head, config, predictor.params.W)
    ov = overlaps(predictor.params.W, target.U)
    spec = hermite_spectrum(jax.random.fold_in(keys.test, 2**21), predictor, target.U, SPECTRUM_DEGREE,
                            config.spectrum_samples, config.test_chunk)
    fields = dict(vars(base), mean_cosine=ov.mean_cosine, min_best_cosine=jnp.min(ov.best_cosine),
                  energy_higher=spec.higher, energy_perp=spec.perp, energy_perp_se=spec.perp_se,
                  **{f"energy_{k}": spec.energy[k] for k in range(SPECTRUM_DEGREE + 1)},
                  **{f"energy_{k}_se": spec.energy_se[k] for k in range(SPECTRUM_DEGREE + 1)})
    traj = result.trajectory
    if traj is None:
        return TrainingMetrics(**fields)
    o = traj.overlaps
    return TrainingMetricsWithTrajectory(**fields, traj_steps=traj.steps, traj_alignment=o.alignment,
                                         traj_mean_cosine=o.mean_cosine, traj_best_cosine=o.best_cosine,
                                         traj_overlap_sq=o.overlap_sq, traj_q_diag=o.q_diag,
                                         traj_q_offdiag=o.q_offdiag)


def run(key: PRNGKeyArray, target: MultiIndexTarget, config: FirstLayerTrainingConfig) -> TrainingMetrics:
    """Train ``T`` first-layer steps and a ridge head, then evaluate: the sweep's method call."""
    return evaluate(key, target, train(key, target, config), config)


def _builder(network: dict[str, Any] | None = None, **defaults: Any):
    # f = O(1) while W moves: the mean-field output of the peers (module docstring)
    network = {"output_scale": "mean", **(network or {})}

    def make_config(d: int, n: int, width: int, hyper: dict[str, Any]) -> FirstLayerTrainingConfig:
        kwargs = dict(defaults)
        if kwargs.get("mode") == "fresh" and "batch_size" in hyper:
            kwargs["steps"] = None  # the batch size given: T follows from n
        if kwargs.get("mode") == "fresh" and "steps" in hyper:
            kwargs["batch_size"] = None
        return build_config(FirstLayerTrainingConfig, d, n, width, hyper, network, **kwargs)

    return make_config


#: ``(d, n, width, hyper) -> config`` of each preset (module docstring).
one_step_config = _builder(mode="reuse", steps=1, scaling="paper")
gd_reuse_config = _builder(mode="reuse", steps=2, scaling="paper")
gd_fresh_config = _builder(mode="fresh", steps=4, batch_size=None, scaling="giant_step")
online_sgd_config = _builder(network=dict(init="sphere"), mode="fresh", steps=None, batch_size=1, scaling="online",
                             weight_decay=0.0, normalize_rows=True)
