"""The grid layer of a sweep: what to run, expanded into runs and grouped into programs.

A :class:`Grid` expands into runs ``(method, target, d, n, width, hyper-parameters, seed)``.  Runs whose configs
share a PyTree structure (the same static fields: shapes and choices) form a :class:`Group` that one compiled
program runs at once: seeds and leaf hyper-parameters (step size, noise, ...) are stacked; with ``mask_samples``
the sample counts of a group are masked up to its largest ``n`` (0/1 weights, the ``n_active`` leaf) so that
several ``n`` share one program.  The first ``n`` samples of a larger draw are exactly the samples of a draw of
size ``n`` (jax's partitionable threefry), so masking changes no data.

A hyper-parameter belongs to the methods that declare it (:attr:`reprjax.methods.registry.Method.hyper`: the fields
of the method's config and of the data and network configs in it, and the aliases its builder converts): runs of
the other methods neither get it nor are multiplied by its values, and a hyper-parameter no method of the grid
declares is refused before anything runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

import jax

from reprjax.problem import links as link_targets
from reprjax.problem import targets as targets_mod
from reprjax._validate import check_int
from reprjax.methods.registry import Method, get_method

#: The target families a grid can name (the runs draw them from their seed key at dimension ``d``).
TARGETS: dict[str, Callable[..., Any]] = {
    "paper": targets_mod.paper_target,
    "single_index": targets_mod.single_index,
    "separable": targets_mod.separable,
    "giant_step": targets_mod.giant_step,
    "staircase": targets_mod.staircase,
    "random_polynomial": targets_mod.random_polynomial,
    "transfer_pair": targets_mod.transfer_pair,
    "link": link_targets.link_target,
}

#: One example of each catalogue family, with the keyword arguments ``reprjax targets`` describes it with.
TARGET_EXAMPLES: dict[str, dict[str, Any]] = {
    "paper": {}, "single_index": {"k": 3}, "separable": {"r": 2, "k": 3}, "giant_step": {}, "staircase": {},
    "random_polynomial": {"r": 3, "p": 4, "kappa": 4.0}, "transfer_pair": {}, "link": {"link": "tanh"},
}

#: Columns of a run dict that every row holds: together with the hyper-parameters, the run's configuration and seed.
RUN_FIELDS = ("method", "target", "d", "n", "width", "seed")
#: Columns the results store adds to every row (:func:`reprjax.sweep.store.group_rows`): how the run went, not what
#: it was.  With the outcome columns the registry declares (:func:`reprjax.methods.registry.outcome_columns`) and the
#: seed they make up the declared results schema: every other column of a row is configuration.
ROW_BOOKKEEPING = ("group_id", "group_size", "attempt", "device", "wall_time_s", "status", "error")


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """A catalogue target by name with its keyword arguments (``d`` and the key come from the run)."""

    name: str = "paper"
    kwargs: tuple[tuple[str, Any], ...] = ()
    normalise: bool = False

    def __post_init__(self) -> None:
        if self.name not in TARGETS:
            raise ValueError(f"target must be one of {tuple(TARGETS)}, got {self.name!r}")

    @classmethod
    def of(cls, name: str, normalise: bool = False, **kwargs: Any) -> "TargetSpec":
        """The spec of catalogue target ``name`` with keyword arguments ``kwargs``."""
        return cls(name, tuple(sorted(kwargs.items())), normalise)

    def build(self, key: jax.Array, d: int) -> Any:
        """The target (or ``(source, target)`` pair) drawn from ``key`` at dimension ``d``."""
        out = TARGETS[self.name](key, d, **dict(self.kwargs))
        if self.normalise:
            out = tuple(t.normalise() for t in out) if isinstance(out, tuple) else out.normalise()
        return out

    def check(self, d: int) -> None:
        """Raise ``ValueError`` now (not mid-sweep) if the target cannot be built at dimension ``d``."""
        jax.eval_shape(lambda k: self.build(k, d), jax.random.key(0))

    def is_pair(self, d: int) -> bool:
        """Whether the target is a ``(source, target)`` pair (as :func:`reprjax.problem.targets.transfer_pair`)."""
        return isinstance(jax.eval_shape(lambda k: self.build(k, d), jax.random.key(0)), tuple)

    def label(self) -> str:
        """The name with its keyword arguments, e.g. ``paper,p=4,r=2`` (the ``target`` column of a row)."""
        return self.name + "".join(f",{k}={v}" for k, v in self.kwargs)


def catalogue_examples() -> list[TargetSpec]:
    """One spec per catalogue family (:data:`TARGETS`), built with :data:`TARGET_EXAMPLES`: the one catalogue
    the command line describes."""
    return [TargetSpec.of(name, **TARGET_EXAMPLES.get(name, {})) for name in TARGETS]


def _check_sizes(name: str, values: Sequence[Any]) -> tuple[int, ...]:
    """``values`` as positive integers without repeats; ``ValueError`` naming ``name`` otherwise."""
    out = tuple(check_int(name, v, low=1) for v in values)
    if not out:
        raise ValueError(f"{name} must hold at least one value, got {tuple(values)!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a value, got {out}")
    return out


@dataclasses.dataclass(frozen=True)
class Grid:
    """Runs = methods x targets x dims x n x widths x hyper-parameter grid x seeds (a full product).

    Attributes:
      methods: names from :data:`reprjax.methods.registry.METHODS`.
      targets: target families.
      dims: input dimensions ``d`` (positive integers, no repeats).
      n: sample counts, or a callable ``d -> sequence of n`` (e.g. a geometric grid scaled with ``d``).
      widths: network widths ``m``.
      hyper: ``(name, values)`` pairs; every combination is run for the methods that declare ``name``.
      seeds: number of seeds (>= 1); run ``s`` uses ``jax.random.key(seed_offset + s)`` for its target and data,
        so every method and hyper-parameter sees the same target and samples for a given seed.
      method_hyper: per-method extra fixed hyper-parameters (``{"entk": {"solver": "cholesky"}}``).
      method_n_max: per-method cap on ``n`` (kernel ridge is ``O(n^3)``).
      method_dims: per-method dimensions in place of ``dims`` (kernels at the ``d`` their solvers reach, the
        network at larger ``d``).
      pair_dims: ``(method, target label, dims)``: dimensions for one method on one target, in place of its
        :attr:`method_dims` or :attr:`dims` (a protocol on a target whose sample count grows fastest, run only
        where it fits).
    """

    methods: tuple[str, ...]
    dims: tuple[int, ...]
    n: tuple[int, ...] | Callable[[int], Sequence[int]]
    widths: tuple[int, ...] = (1024,)
    targets: tuple[TargetSpec, ...] = (TargetSpec(),)
    hyper: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    seeds: int = 3
    seed_offset: int = 0
    method_hyper: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    method_n_max: tuple[tuple[str, int], ...] = ()
    method_dims: tuple[tuple[str, tuple[int, ...]], ...] = ()
    pair_dims: tuple[tuple[str, str, tuple[int, ...]], ...] = ()

    def __post_init__(self) -> None:
        check_int("seeds", self.seeds, low=1)
        check_int("seed_offset", self.seed_offset, low=0)
        _check_sizes("dims", self.dims)
        _check_sizes("widths", self.widths)
        if not callable(self.n):
            _check_sizes("n", self.n)

    @property
    def all_dims(self) -> tuple[int, ...]:
        """Every dimension some method of the grid runs at, sorted."""
        return tuple(sorted({d for m in self.methods for t in self.targets for d in self.dims_of(m, t.label())}))

    def dims_of(self, method: str, target: str | None = None) -> tuple[int, ...]:
        """The dimensions ``method`` runs at on the target labelled ``target`` (its :attr:`pair_dims` entry, else
        the method's :attr:`method_dims` entry, else :attr:`dims`)."""
        pair = {(m, t): dims for m, t, dims in self.pair_dims}
        return pair.get((method, target), dict(self.method_dims).get(method, self.dims))

    def sample_counts(self, d: int) -> tuple[int, ...]:
        """The sample counts at dimension ``d`` (``n`` or ``n(d)``), checked."""
        return _check_sizes("n", self.n(d) if callable(self.n) else self.n)

    def hyper_of(self, method: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
        """The ``(name, values)`` pairs of :attr:`hyper` that ``method`` declares (:attr:`Method.hyper`)."""
        declared = get_method(method).hyper
        return tuple((k, v) for k, v in self.hyper if k in declared)

    def check_hyper(self) -> None:
        """Raise ``ValueError`` in one line if a hyper-parameter is declared by no method of the grid, or a
        ``method_hyper`` entry names a hyper-parameter its method does not declare."""
        for method, dims in self.method_dims:
            _check_sizes(f"method_dims for {method!r}", dims)
        labels = [t.label() for t in self.targets]
        seen = set()
        for method, target, dims in self.pair_dims:
            if method not in self.methods:
                raise ValueError(f"pair_dims names {method!r}, which is not a method of this grid "
                                 f"({', '.join(self.methods)})")
            if target not in labels:
                raise ValueError(f"pair_dims names the target {target!r}, which is not a target of this grid "
                                 f"({', '.join(labels)})")
            if (method, target) in seen:
                raise ValueError(f"pair_dims names ({method!r}, {target!r}) twice")
            seen.add((method, target))
            _check_sizes(f"pair_dims for ({method!r}, {target!r})", dims)
        for field, entries in (("method_hyper", self.method_hyper), ("method_n_max", self.method_n_max),
                               ("method_dims", self.method_dims)):
            strays = [m for m, _ in entries if m not in self.methods]
            if strays:
                raise ValueError(f"{field} names {strays[0]!r}, which is not a method of this grid "
                                 f"({', '.join(self.methods)})")
        for method, cap in self.method_n_max:
            check_int(f"method_n_max for {method!r}", cap, low=1)
        declared = {m: get_method(m).hyper for m in self.methods}
        for name, _ in self.hyper:
            if not any(name in found for found in declared.values()):
                raise ValueError(f"hyper-parameter {name!r} is not a field of the config of any method of this "
                                 f"grid ({', '.join(self.methods)})")
        for method, extra in self.method_hyper:
            missing = [k for k, _ in extra if k not in declared[method]]
            if missing:
                raise ValueError(f"method_hyper for {method!r}: {missing[0]!r} is not a field of its config")

    def runs(self) -> list[dict[str, Any]]:
        """All runs as dicts (method, target, d, n, width, seed and each hyper-parameter), in a stable order."""
        for method in self.methods:
            get_method(method)
        self.check_hyper()
        extra = {m: dict(h) for m, h in self.method_hyper}
        caps = dict(self.method_n_max)
        out = []
        for method, target in itertools.product(self.methods, self.targets):
            hyper = self.hyper_of(method)
            names = [k for k, _ in hyper]
            combos = list(itertools.product(*[v for _, v in hyper])) or [()]
            for d in self.dims_of(method, target.label()):
                for n in self.sample_counts(d):
                    if method in caps and n > caps[method]:
                        continue
                    for width, combo, seed in itertools.product(self.widths, combos, range(self.seeds)):
                        run = dict(method=method, target=target.label(), d=int(d), n=int(n), width=int(width),
                                   seed=int(seed))
                        run.update(extra.get(method, {}))
                        run.update(dict(zip(names, combo)))
                        out.append(run)
        return out

    def target_spec(self, label: str) -> TargetSpec:
        """The target spec whose :meth:`TargetSpec.label` is ``label``."""
        return next(t for t in self.targets if t.label() == label)


def hyper_of_run(run: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters of a run dict (everything but the run fields)."""
    return {k: v for k, v in run.items() if k not in RUN_FIELDS}


def config_of(method: Method, run: dict[str, Any]) -> Any:
    """The method's config for one run dict."""
    return method.make_config(run["d"], run["n"], run["width"], hyper_of_run(run))


@dataclasses.dataclass
class Group:
    """Runs sharing one compiled program: one method, target and ``d``, configs of one PyTree structure."""

    method: Method
    d: int
    target: TargetSpec
    runs: list[dict[str, Any]]
    configs: list[Any]
    group_id: str

    @property
    def size(self) -> int:
        return len(self.runs)


def stable_id(obj: Any) -> str:
    """A short hash of a JSON-able object (group ids, the manifest's run list)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_groups(grid: Grid, mask_samples: bool = False) -> list[Group]:
    """Group the grid's runs by (method, target, d, config structure).

    Args:
      grid: the runs.
      mask_samples: the sample count becomes the ``n_active`` leaf of a config at the group's largest ``n``, for
        the methods that support masks, so that several ``n`` share one program.

    Returns:
      The groups in the grid's order (every config is built: bad input raises here, before anything runs).
    """
    buckets: dict[Any, list[tuple[dict[str, Any], Any]]] = {}
    for run in grid.runs():
        method = get_method(run["method"])
        config = config_of(method, run)
        probe = method.mask(config, 10**9, 2) if mask_samples and method.supports_mask else config
        key = (run["method"], run["target"], run["d"], jax.tree.structure(probe))
        buckets.setdefault(key, []).append((run, config))
    groups = []
    for key, members in buckets.items():
        method = get_method(key[0])
        runs = [r for r, _ in members]
        configs = [c for _, c in members]
        if mask_samples and method.supports_mask:
            n_max = max(r["n"] for r in runs)
            configs = [method.mask(config_of(method, {**r, "n": n_max}), n_max, r["n"]) for r in runs]
        groups.append(Group(method, key[2], grid.target_spec(key[1]), runs, configs, stable_id(runs)))
    return groups
