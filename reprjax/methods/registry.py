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
  Kernel methods solve exactly up to ``exact_n_max`` fitting samples and by Nystrom beyond (:mod:`reprjax.solvers.nystrom`).
* ``one_step``, ``gd_reuse``, ``gd_fresh``, ``online_sgd``: first-layer training over T steps as one ``lax.scan``
  (:mod:`reprjax.methods.first_layer_presets`, docs/beyond_one_step.md), with the Hermite spectrum and overlaps in the rows.
* ``transfer``: learn ``W_1`` on the source head with ``source_n`` samples, refit the head on ``n`` samples of the
  target head (a :func:`reprjax.problem.targets.transfer_pair`); the "target" passed in is the pair.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
from jaxtyping import PRNGKeyArray

from reprjax.methods import algorithm1 as algorithm
from reprjax.methods import kernel_ridge as baselines
from reprjax.methods import both_layers as multistep
from reprjax.methods import first_layer_presets as multistep_methods
from reprjax.problem.data import DataConfig
from reprjax.network import NetworkConfig
from reprjax.problem.targets import MultiIndexTarget

Hyper = dict[str, Any]

#: Hyper-parameters routed to the data config / network config rather than the method config.
_DATA_KEYS = ("noise", "spike", "spike_direction", "spike_target")
_NETWORK_KEYS = ("activation", "init", "output_scale", "init_bias_scale")


def _split(d: int, hyper: Hyper) -> tuple[DataConfig, dict[str, Any], dict[str, Any]]:
    hyper = dict(hyper)
    if "spike_beta" in hyper:  # theta = d^beta (Ba et al. 2023); beta = None or -inf means isotropic
        beta = hyper.pop("spike_beta")
        hyper["spike"] = 0.0 if beta is None or beta == float("-inf") else float(d) ** float(beta)
    data = DataConfig(**{k: v for k, v in hyper.items() if k in _DATA_KEYS})
    net = {k: v for k, v in hyper.items() if k in _NETWORK_KEYS}
    rest = {k: v for k, v in hyper.items() if k not in _DATA_KEYS + _NETWORK_KEYS}
    return data, net, rest


def _with_tuples(kwargs: dict[str, Any]) -> dict[str, Any]:
    # TOML and JSON give lists; static config fields must be hashable
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def _algorithm1_config(d: int, n: int, width: int, hyper: Hyper) -> algorithm.Algorithm1Config:
    data, net, rest = _split(d, hyper)
    return algorithm.Algorithm1Config(n=n, network=NetworkConfig(width=width, **net), data=data,
                                      **_with_tuples(rest))


def _multistep_config(d: int, n: int, width: int, hyper: Hyper) -> multistep.MultiStepConfig:
    data, net, rest = _split(d, hyper)
    net.setdefault("output_scale", "sqrt")
    return multistep.MultiStepConfig(n=n, network=NetworkConfig(width=width, **net), data=data,
                                     **_with_tuples(rest))


def _kernel_config(d: int, n: int, width: int, hyper: Hyper) -> baselines.KernelConfig:
    data, net, rest = _split(d, hyper)
    return baselines.KernelConfig(n=n, network=NetworkConfig(width=width, **net), data=data, **_with_tuples(rest))


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


def run_transfer(key: PRNGKeyArray, pair: tuple[MultiIndexTarget, MultiIndexTarget], config: TransferConfig):
    source, target = pair
    learned = algorithm.train_one_step(jax.random.fold_in(key, 1), source, config.source_config(source.d))
    return algorithm.transfer(key, learned.predictor, target, config.head)


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
    """A method a sweep can run, stating everything the sweep and the studies need to know of it.

    Attributes:
      name: registry key.
      run: ``(key, target, config) -> metrics``.
      make_config: ``(d, n, width, hyper) -> config`` (hyper-parameters that are config fields).
      needs_pair: the target is a ``(source, target)`` pair (:func:`reprjax.problem.targets.transfer_pair`).
      supports_mask: the config has an ``n_active`` leaf, so several ``n`` share one program.
      kernel: kernel ridge (exact up to ``exact_n_max`` fitting samples, Nystrom beyond); studies compare families.
      cost: ``(config, d) -> Cost`` of one run.
      mask: ``(config, n_max, n_active) -> config`` run on a prefix of the samples.
    """

    name: str
    run: Callable[..., Any]
    make_config: Callable[[int, int, int, Hyper], Any]
    needs_pair: bool = False
    supports_mask: bool = True
    kernel: bool = False
    cost: Callable[[Any, int], Cost] = network_cost
    mask: Callable[[Any, int, Any], Any] = mask_config


METHODS: dict[str, Method] = {
    "algorithm1": Method("algorithm1", algorithm.run, _algorithm1_config),
    "random_features": Method("random_features", algorithm.random_features, _algorithm1_config),
    "multistep": Method("multistep", multistep.run_multistep, _multistep_config, supports_mask=False,
                        cost=optax_cost),
    "entk": Method("entk", baselines.ntk_empirical, _kernel_config, kernel=True, cost=kernel_cost),
    "ntk_infinite": Method("ntk_infinite", baselines.ntk_infinite_ridge, _kernel_config, kernel=True,
                           cost=kernel_cost),
    "nngp_infinite": Method("nngp_infinite", baselines.ntk_infinite_ridge, _nngp_config, kernel=True,
                            cost=kernel_cost),
    "transfer": Method("transfer", run_transfer, _transfer_config, needs_pair=True, mask=_mask_transfer),
    "one_step": Method("one_step", multistep_methods.run, multistep_methods.one_step_config, supports_mask=False),
    "gd_reuse": Method("gd_reuse", multistep_methods.run, multistep_methods.gd_reuse_config, supports_mask=False),
    "gd_fresh": Method("gd_fresh", multistep_methods.run, multistep_methods.gd_fresh_config, supports_mask=False),
    "online_sgd": Method("online_sgd", multistep_methods.run, multistep_methods.online_sgd_config,
                         supports_mask=False),
}


def kernel_methods() -> tuple[str, ...]:
    """Names of the registered kernel-ridge methods."""
    return tuple(name for name, method in METHODS.items() if method.kernel)


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {name!r}")
    return METHODS[name]

