"""The training methods a sweep can run, each ``(key, target, config) -> Metrics``, and how to configure them.

A :class:`Method` pairs a run function with a config builder ``(d, n, width, hyper) -> config``; hyper-parameters that
are PyTree leaves of the config (step size, noise, ...) can vary inside one compiled program, the others
(activation, pre-processing, ...) are static and split the sweep into groups.

Registered methods:

* ``algorithm1``: :func:`reprjax.methods.algorithm1.run` (one step + ridge).
* ``random_features``: the same pipeline with the first layer frozen at initialisation.
* ``multistep``: both layers trained by optax (:mod:`reprjax.methods.both_layers`).
* ``entk``: kernel ridge with the empirical NTK of the network at initialisation (:mod:`reprjax.methods.kernel_ridge`).
* ``ntk_infinite``: kernel ridge with the infinite-width ReLU NTK.
* ``nngp_infinite``: kernel ridge with the infinite-width ReLU NNGP kernel (the ``a`` part of the NTK: the kernel of
  infinitely many random features).
  Kernel methods solve exactly up to ``exact_n_max`` fitting samples and by Nystrom beyond
  (:mod:`reprjax.solvers.nystrom`).
* ``one_step``, ``gd_reuse``, ``gd_fresh``, ``online_sgd``: first-layer training over T steps as one ``lax.scan``
  (:mod:`reprjax.methods.first_layer_presets`, docs/beyond_one_step.md), with the Hermite spectrum and overlaps in
  the rows.
* ``transfer``: learn ``W_1`` on the source head with ``source_n`` samples, refit the head on ``n`` samples of the
  target head (a :func:`reprjax.problem.targets.transfer_pair`); the "target" passed in is the pair.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
from jaxtyping import PRNGKeyArray

from reprjax.methods import algorithm1 as algorithm
from reprjax.methods import kernel_ridge as baselines
from reprjax.methods import both_layers as multistep
from reprjax.methods import first_layer_presets as multistep_methods
from reprjax.methods.contract import Metrics
from reprjax.methods.run_config import build_config, declared_hyper
from reprjax.problem.targets import MultiIndexTarget

Hyper = dict[str, Any]


def _algorithm1_config(d: int, n: int, width: int, hyper: Hyper) -> algorithm.Algorithm1Config:
    return build_config(algorithm.Algorithm1Config, d, n, width, hyper)


def _multistep_config(d: int, n: int, width: int, hyper: Hyper) -> multistep.MultiStepConfig:
    return build_config(multistep.MultiStepConfig, d, n, width, hyper, network=dict(output_scale="sqrt"))


def _kernel_config(d: int, n: int, width: int, hyper: Hyper) -> baselines.KernelConfig:
    return build_config(baselines.KernelConfig, d, n, width, hyper)


def _nngp_config(d: int, n: int, width: int, hyper: Hyper) -> baselines.KernelConfig:
    hyper = dict(hyper)
    if hyper.setdefault("parts", ("a",)) not in (("a",), ["a"]):
        raise ValueError(f"nngp_infinite is the 'a' part of the NTK; parts must be ('a',), got {hyper['parts']!r}")
    return _kernel_config(d, n, width, hyper)


def _transfer_config(d: int, n: int, width: int, hyper: Hyper) -> TransferConfig:
    hyper = dict(hyper)
    source_n = hyper.pop("source_n", None)
    source_n_over_d2 = hyper.pop("source_n_over_d2", 32)
    head = _algorithm1_config(d, n, width, hyper)
    return TransferConfig(head=head, source_n=source_n, source_n_over_d2=source_n_over_d2)


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Transfer: ``W_1`` learned with ``source_n`` (default ``source_n_over_d2 * d^2``) samples of the source head
    by Algorithm 1 with the head config otherwise, then the head refit on ``head.n`` samples of the target head."""

    head: algorithm.Algorithm1Config
    source_n: int | None = None
    source_n_over_d2: int = 32

    def source_config(self, d: int) -> algorithm.Algorithm1Config:
        n = self.source_n if self.source_n is not None else self.source_n_over_d2 * d * d
        return self.head.replace(n=n, n_active=None)


jax.tree_util.register_dataclass(TransferConfig, data_fields=["head"], meta_fields=["source_n", "source_n_over_d2"])


def run_transfer(key: PRNGKeyArray, pair: tuple[MultiIndexTarget, MultiIndexTarget],
                 config: TransferConfig) -> Metrics:
    """Learn ``W_1`` and the biases on the source head (Algorithm 1's steps 0-2,
    :func:`reprjax.methods.algorithm1.learn_first_layer`: the source head is never fitted, as
    :func:`~reprjax.methods.algorithm1.transfer` uses only the first layer) and refit the head on the target head."""
    source, target = pair
    learned = algorithm.learn_first_layer(jax.random.fold_in(key, 1), source, config.source_config(source.d))
    return algorithm.transfer(key, learned, target, config.head)


@dataclasses.dataclass(frozen=True)
class Cost:
    """Rough resources of one run, which the executor uses to place a group.

    Attributes:
      working_set_bytes: bytes the run holds at once (samples, features, kernel blocks or Gram matrices).
      largest_factorisation: order of the largest matrix the run factorises (0: none).
    """

    working_set_bytes: float
    largest_factorisation: int


def run_sizes(config: Any) -> tuple[int, int]:
    """``(n, width)`` of a run's config (transfer: of its head's Algorithm 1 config; 0 where a config has none)."""
    head = getattr(config, "head", None)
    if dataclasses.is_dataclass(head) and hasattr(head, "n"):  # transfer wraps an Algorithm 1 config
        config = head
    return getattr(config, "n", 0), getattr(getattr(config, "network", None), "width", 0)


def _base_bytes(config: Any, d: int) -> float:
    n, width = run_sizes(config)
    return 4.0 * n * (d + 3 * width) + 4.0 * 3 * width * width


def network_cost(config: Any, d: int) -> Cost:
    """A network with a ridge head: factorises at most ``min(n, width)`` (primal ``m x m`` when ``n > m``)."""
    n, width = run_sizes(config)
    return Cost(_base_bytes(config, d), min(n, width))


def optax_cost(config: Any, d: int) -> Cost:
    """Both layers trained by optax: no factorisation."""
    return Cost(_base_bytes(config, d), 0)


def kernel_cost(config: baselines.KernelConfig, d: int) -> Cost:
    """Kernel ridge: ``n x n`` Gram matrices when exact; ``block x M`` blocks and ``M x M`` float64 matrices when
    Nystrom (:mod:`reprjax.solvers.nystrom`)."""
    if config.uses_nystrom:
        m = config.centres_for(d)
        return Cost(4.0 * config.n * d + 8.0 * (config.block * m + 4 * m * m), m)
    return Cost(_base_bytes(config, d) + 4.0 * 3 * config.n * config.n, config.n)


def mask_config(config: Any, n_max: int, n_active: Any) -> Any:
    """The config run on the first ``n_active`` of ``n_max`` samples (0/1 masks: the ``n_active`` leaf)."""
    return config.replace(n=n_max, n_active=n_active)


def _mask_transfer(config: "TransferConfig", n_max: int, n_active: Any) -> "TransferConfig":
    return dataclasses.replace(config, head=mask_config(config.head, n_max, n_active))


@dataclasses.dataclass(frozen=True)
class Method:
    """A method a sweep can run, declaring everything the sweep, the studies and the reports need to know of it.

    Attributes:
      name: registry key (the ``method`` column of a row).
      run: ``(key, target, config) -> outcomes``.
      make_config: ``(d, n, width, hyper) -> config`` (:func:`reprjax.methods.run_config.build_config` for a
        config extending :class:`reprjax.methods.run_config.RunCore`).
      config: the config class ``make_config`` builds.
      outcomes: the row type ``run`` returns: :class:`reprjax.methods.contract.Metrics` or a subclass adding typed
        outcomes; its fields are the method's outcome columns (:attr:`outcome_columns`).
      hyper: the hyper-parameter names the method takes (declared, never guessed); empty (default): those of
        ``config`` (:func:`reprjax.methods.run_config.declared_hyper`: its fields and, through its ``data`` and
        ``network`` configs, theirs).
      label: display name in figures and reports (default: ``name``).
      needs_pair: the target is a ``(source, target)`` pair (:func:`reprjax.problem.targets.transfer_pair`).
      supports_mask: the config has an ``n_active`` leaf, so several ``n`` share one program.
      kernel: kernel ridge (exact up to ``exact_n_max`` fitting samples, Nystrom beyond); studies compare families.
      trains_first_layer: the method moves the first layer away from its initialisation (feature learning).
      cost: ``(config, d) -> Cost`` of one run.
      mask: ``(config, n_max, n_active) -> config`` run on a prefix of the samples.
    """

    name: str
    run: Callable[..., Any]
    make_config: Callable[[int, int, int, Hyper], Any]
    config: type
    outcomes: type = Metrics
    hyper: frozenset[str] = frozenset()
    label: str = ""
    needs_pair: bool = False
    supports_mask: bool = True
    kernel: bool = False
    trains_first_layer: bool = False
    cost: Callable[[Any, int], Cost] = network_cost
    mask: Callable[[Any, int, Any], Any] = mask_config

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a method's name must be a non-empty string, got {self.name!r}")
        if not (isinstance(self.outcomes, type) and issubclass(self.outcomes, Metrics)):
            raise ValueError(f"method {self.name!r}: outcomes must be Metrics or a subclass of it, got "
                             f"{self.outcomes!r}")
        if not dataclasses.is_dataclass(self.config):
            raise ValueError(f"method {self.name!r}: config must be a dataclass, got {self.config!r}")
        object.__setattr__(self, "hyper", frozenset(self.hyper) or declared_hyper(self.config))
        object.__setattr__(self, "label", self.label or self.name)

    @property
    def outcome_columns(self) -> tuple[str, ...]:
        """The columns of a row that ``run`` fills (fields of :attr:`outcomes`)."""
        return outcome_fields(self.outcomes)


def outcome_fields(outcomes: type) -> tuple[str, ...]:
    """Field names of a :class:`~reprjax.methods.contract.Metrics` type (the outcome columns of its rows)."""
    return tuple(f.name for f in dataclasses.fields(outcomes))


_ALGORITHM1 = dict(make_config=_algorithm1_config, config=algorithm.Algorithm1Config)
_KERNEL = dict(config=baselines.KernelConfig, kernel=True, cost=kernel_cost)
_FIRST_LAYER = dict(run=multistep_methods.run, config=multistep_methods.FirstLayerTrainingConfig,
                    outcomes=multistep_methods.TrainingMetricsWithTrajectory, supports_mask=False,
                    trains_first_layer=True)

METHODS: dict[str, Method] = {}


def register(method: Method, replace: bool = False) -> Method:
    """Add ``method`` to :data:`METHODS` (a name already taken is refused unless ``replace``); returns it."""
    if not isinstance(method, Method):
        raise ValueError(f"register takes a Method, got {type(method).__name__}")
    if method.name in METHODS and not replace and METHODS[method.name] is not method:
        raise ValueError(f"a method named {method.name!r} is already registered (pass replace=True to replace it)")
    METHODS[method.name] = method
    return method


for _method in (
    Method("algorithm1", algorithm.run, **_ALGORITHM1, label="Algorithm 1 (one step)", trains_first_layer=True),
    Method("random_features", algorithm.random_features, **_ALGORITHM1, label="random features"),
    Method("multistep", multistep.run_multistep, _multistep_config, multistep.MultiStepConfig, supports_mask=False,
           cost=optax_cost, label="multi-step GD", trains_first_layer=True),
    Method("entk", baselines.ntk_empirical, _kernel_config, **_KERNEL, label="empirical NTK ridge"),
    Method("ntk_infinite", baselines.ntk_infinite_ridge, _kernel_config, **_KERNEL, label="infinite NTK ridge"),
    Method("nngp_infinite", baselines.ntk_infinite_ridge, _nngp_config, **_KERNEL, label="infinite NNGP ridge"),
    Method("transfer", run_transfer, _transfer_config, TransferConfig, needs_pair=True, mask=_mask_transfer,
           hyper=declared_hyper(algorithm.Algorithm1Config) | {"source_n", "source_n_over_d2"},
           label="transferred head", trains_first_layer=True),
    Method("one_step", make_config=multistep_methods.one_step_config, **_FIRST_LAYER, label="one step (with spectrum)"),
    Method("gd_reuse", make_config=multistep_methods.gd_reuse_config, **_FIRST_LAYER, label="GD reusing a batch"),
    Method("gd_fresh", make_config=multistep_methods.gd_fresh_config, **_FIRST_LAYER, label="GD, fresh batches"),
    Method("online_sgd", make_config=multistep_methods.online_sgd_config, **_FIRST_LAYER, label="online SGD"),
):
    register(_method)


def kernel_methods() -> tuple[str, ...]:
    """Names of the registered kernel-ridge methods."""
    return tuple(name for name, method in METHODS.items() if method.kernel)


def get_method(name: str) -> Method:
    """The registered method ``name`` (``ValueError`` listing the registered names otherwise)."""
    if name not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {name!r}")
    return METHODS[name]


def method_label(name: str) -> str:
    """The display label of method ``name`` (the name itself for a name the registry does not hold)."""
    return METHODS[name].label if name in METHODS else name


def outcome_columns() -> tuple[str, ...]:
    """Every outcome column any registered method fills: the declared results schema's outcomes."""
    return tuple(dict.fromkeys(c for method in METHODS.values() for c in method.outcome_columns))


def load_plugins(modules: Sequence[str]) -> list[str]:
    """Import each named module so that its methods register (:func:`register`); returns the names it added.

    The command line calls it with a study config's ``plugins = [...]`` list (docs/adding_a_method.md).

    Raises:
      ValueError: a module that cannot be imported, named with the import error.
    """
    before = set(METHODS)
    for name in modules:
        if not isinstance(name, str) or not name:
            raise ValueError(f"plugins must be a list of importable module names, got {name!r}")
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ValueError(f"plugin {name!r} cannot be imported: {err}") from None
    return [m for m in METHODS if m not in before]
