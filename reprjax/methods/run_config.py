"""The run core: the config fields and checks every method shares, and the one routing of hyper-parameters.

docs/architecture.md, "The path of one run": every method draws ``n`` samples of one target for one network, holds
out a validation share, may remove the labels' constant and linear parts, and is scored on ``n_test`` fresh samples.
Those fields live here once, in three nested layers that a method's config extends (dataclass inheritance: the
fields stay at the top level, so ``config.n`` and ``config.lambdas`` read as before):

* :class:`RunCore`: ``n``, ``network``, ``data``, ``preprocess``, ``val_fraction``, ``n_test``, ``test_chunk``;
* :class:`RidgeCore`: plus the ridge strengths and solver of a head (``lambdas``, ``solver``, ``precision``);
* :class:`FirstLayerCore`: plus a first-layer step and its streamed passes (``eta_scale``, ``weight_decay``,
  ``bias_scale``, ``form``, ``chunk``), shared by Algorithm 1 and multi-step first-layer training.

Static (shape or choice) fields are ``pytree_node=False``; ``data``, ``eta_scale``, ``weight_decay`` and
``bias_scale`` are leaves.  Checks run once, at construction: a subclass's ``__post_init__`` calls
``super().__post_init__()`` first.

:func:`split_hyper` routes a run's hyper-parameters to the data config, the network config and the method config by
the fields those configs declare (no hand-kept lists), with the alias ``spike_beta`` (``spike = d^spike_beta``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flax import struct

from reprjax import _validate
from reprjax.network import NetworkConfig
from reprjax.problem.data import DataConfig
from reprjax.solvers import ridge

#: Hyper-parameter names a config builder converts rather than passes on: ``spike_beta`` sets ``spike = d^beta``
#: (Ba et al. 2023; ``None`` or ``-inf``: isotropic).
ALIASES = ("spike_beta",)
#: Fields of a config that come from the run itself (its sample count and width), never from a hyper-parameter.
RUN_SIZE_FIELDS = ("n", "width", "n_active", "network", "data")
#: Ridge solver forms (:mod:`reprjax.solvers.ridge`).
FORMS = ("auto", "primal", "dual")


@struct.dataclass
class RunCore:
    """What every run is made of (module docstring).

    Attributes:
      n: total samples, validation included (>= 2).
      network: width, activation, initialisation of the network (or of the kernel's network).
      data: label noise and input covariance (PyTree leaves: vmappable).
      preprocess: subtract the labels' constant and linear parts ``alpha + <beta, x>`` (docs/setting.md, step 0).
      val_fraction: share of the ``n`` samples held out for validation (never trained on).
      n_test: fresh test samples for the metrics; test_chunk: their chunk size.
    """

    n: int = struct.field(pytree_node=False, default=4096)
    network: NetworkConfig = struct.field(pytree_node=False, default=NetworkConfig())
    data: DataConfig = DataConfig()
    preprocess: bool = struct.field(pytree_node=False, default=True)
    val_fraction: float = struct.field(pytree_node=False, default=0.2)
    n_test: int = struct.field(pytree_node=False, default=10_000)
    test_chunk: int = struct.field(pytree_node=False, default=2048)

    def __post_init__(self) -> None:
        n = _validate.check_int("n", self.n, low=2)
        if not isinstance(self.network, NetworkConfig):
            raise ValueError(f"network must be a NetworkConfig, got {type(self.network).__name__}")
        if not isinstance(self.data, DataConfig):
            raise ValueError(f"data must be a DataConfig, got {type(self.data).__name__}")
        _validate.check_number("val_fraction", self.val_fraction, low=0.0, high=1.0, low_open=True)
        _validate.check_stage_sizes(n, self.val_fraction, None)
        _validate.check_int("n_test", self.n_test, low=1)
        _validate.check_int("test_chunk", self.test_chunk, low=1)


@struct.dataclass
class RidgeCore(RunCore):
    """A run with a ridge head: :class:`RunCore` plus the strengths and solver (:mod:`reprjax.solvers.ridge`).

    Attributes:
      lambdas: relative ridge strengths (multiples of ``tr(K)/n``), chosen on the validation split.
      solver, precision: ridge solver choices (:data:`reprjax.solvers.ridge.SOLVERS`, ``PRECISIONS``).
    """

    lambdas: tuple[float, ...] | None = struct.field(pytree_node=False, default=ridge.DEFAULT_LAMBDAS)
    solver: str = struct.field(pytree_node=False, default="auto")
    precision: str = struct.field(pytree_node=False, default="refined")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lambdas is not None:
            ridge.check_lambdas(self.lambdas)
        _validate.check_choice("solver", self.solver, ridge.SOLVERS)
        _validate.check_choice("precision", self.precision, ridge.PRECISIONS)


@struct.dataclass
class FirstLayerCore(RidgeCore):
    """A trained first layer with a ridge head: :class:`RidgeCore` plus the step and the streamed passes.

    Attributes:
      eta_scale: prefactor of the step size (> 0; each method states its scaling).
      weight_decay: ``lambda`` of the step (>= 0); ``None`` means the paper's ``1 / eta`` at the first step.
      bias_scale: standard deviation of the biases re-drawn before the head (>= 0).
      form: ``auto``, ``primal`` or ``dual`` ridge (:mod:`reprjax.solvers.ridge`).
      chunk: samples per chunk in every pass over the training samples (memory ``O(chunk * (d + m) + m^2)``).
    """

    eta_scale: float = 1.0
    weight_decay: float | None = None
    bias_scale: float = 1.0
    form: str = struct.field(pytree_node=False, default="auto")
    chunk: int = struct.field(pytree_node=False, default=16384)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lambdas is None:
            raise ValueError("lambdas must be a non-empty tuple of positive strengths, got None")
        _validate.check_number("eta_scale", self.eta_scale, low=0.0, low_open=True)
        if self.weight_decay is not None:
            _validate.check_number("weight_decay", self.weight_decay, low=0.0)
        _validate.check_number("bias_scale", self.bias_scale, low=0.0)
        _validate.check_choice("form", self.form, FORMS)
        _validate.check_int("chunk", self.chunk, low=1)


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


#: Hyper-parameters routed to the data config and to the network config (their fields; the width is the run's).
DATA_HYPER = _field_names(DataConfig)
NETWORK_HYPER = tuple(k for k in _field_names(NetworkConfig) if k != "width")


def declared_hyper(config_cls: type) -> frozenset[str]:
    """The hyper-parameter names a config class takes: its own fields but the run's sizes, plus the data and
    network fields (and :data:`ALIASES`) when it holds a ``data`` or ``network`` config."""
    fields = set(_field_names(config_cls))
    names = fields - set(RUN_SIZE_FIELDS)
    if "data" in fields:
        names |= set(DATA_HYPER) | set(ALIASES)
    if "network" in fields:
        names |= set(NETWORK_HYPER)
    return frozenset(names)


def split_hyper(d: int, hyper: dict[str, Any]) -> tuple[DataConfig, dict[str, Any], dict[str, Any]]:
    """``(data config, network fields, the rest)`` of one run's hyper-parameters.

    ``spike_beta`` becomes ``spike = d^spike_beta``; lists (TOML, JSON) become tuples, since static config fields
    must be hashable.
    """
    hyper = {k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items()}
    if "spike_beta" in hyper:
        beta = hyper.pop("spike_beta")
        hyper["spike"] = 0.0 if beta is None or beta == float("-inf") else float(d) ** float(beta)
    data = DataConfig(**{k: v for k, v in hyper.items() if k in DATA_HYPER})
    net = {k: v for k, v in hyper.items() if k in NETWORK_HYPER}
    rest = {k: v for k, v in hyper.items() if k not in DATA_HYPER and k not in NETWORK_HYPER}
    return data, net, rest


def build_config(cls: type, d: int, n: int, width: int, hyper: dict[str, Any],
                 network: dict[str, Any] | None = None, **defaults: Any) -> Any:
    """The config ``cls`` of one run: ``n`` and ``width`` from the run, ``hyper`` routed by :func:`split_hyper`.

    Args:
      cls: a config class extending :class:`RunCore`.
      d, n, width: the run's dimension, sample count and width.
      hyper: the run's hyper-parameters.
      network: network defaults of the method (``hyper`` overrides them).
      defaults: method-config defaults of the method (``hyper`` overrides them).
    """
    data, net, rest = split_hyper(d, hyper)
    net = {**(network or {}), **net}
    return cls(n=n, network=NetworkConfig(width=width, **net), data=data, **{**defaults, **rest})


__all__ = ["ALIASES", "DATA_HYPER", "FirstLayerCore", "NETWORK_HYPER", "RidgeCore", "RunCore", "build_config",
           "declared_hyper", "split_hyper"]
