"""Sweep engine: a declarative grid of runs, grouped by static shapes, vmapped and sharded, resumable on disk.

A :class:`Grid` expands into runs ``(method, target, d, n, width, hyper-parameters, seed)``.  Runs whose configs
share a PyTree structure (the same static fields: shapes and choices) form a *group* that one compiled program
runs at once: seeds and leaf hyper-parameters (step size, noise, ...) are stacked and vmapped; with
``mask_samples`` the sample counts of a group are masked up to its largest ``n`` (0/1 weights, the ``n_active``
leaf) so that several ``n`` share one program.  The first ``n`` samples of a larger draw are exactly the samples of
a draw of size ``n`` (jax's partitionable threefry), so masking changes no data.

Execution paths for a group (``execution``): ``loop`` (one jitted run per member, a Python loop), ``threads`` (the
members split into one chunk per CPU core, each chunk a jitted ``lax.map`` on its own worker thread, LAPACK held to
one thread: :mod:`reprjax.host_threads`),
``vmap`` (one jitted ``vmap`` over members) and ``sharded`` (members split over a ``("runs",)`` mesh of all devices
by ``jax.shard_map`` with inputs placed by a ``NamedSharding``, padded to a multiple of the device count; each
device runs its members with ``vmap`` on accelerators and with ``lax.map`` on CPU -- see :func:`sharded_program`);
``auto`` picks per backend the path the benchmark harness measured fastest (see :data:`AUTO_EXECUTION`).  Many
hosts: call ``jax.distributed.initialize()`` first (``reprjax run --distributed``); every process runs the same
groups in the same order (SPMD), the mesh spans all global devices, inputs are built with
``jax.make_array_from_callback`` and only process 0 writes results.

Results: each finished group's rows are appended to ``results.jsonl`` in one write, flushed and fsynced; a run
killed (even by SIGKILL) loses at most the group in flight, and re-running the same grid skips the groups already
on disk.  A group that raises (out of memory, bad numerics) is recorded as failed rows carrying the error, and the
sweep goes on; runs whose outcome is NaN/inf are rows with ``status = "failed"``.  :func:`load_results` reads the
rows into a pandas DataFrame (incomplete trailing writes are ignored).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.sharding import NamedSharding, PartitionSpec

from reprjax import host_threads
from reprjax import targets as targets_mod
from reprjax.methods import Method, TransferConfig, get_method, with_n_active

RESULTS_FILE = "results.jsonl"
MANIFEST_FILE = "sweep.json"
EXECUTIONS = ("auto", "loop", "threads", "vmap", "sharded")

#: What ``execution="auto"`` runs on each backend.  Accelerators: ``vmap`` (one device) or ``sharded`` (several),
#: which fill the device with many small runs.  CPU: ``threads``, measured by ``reprjax bench --only sweep`` on 2
#: cores (64 small runs, d = 16, n = 2048, m = 256): a loop of jitted runs 109-115 configs/s, ``vmap`` 107-134 (a
#: batch of factorisations runs one matrix at a time), 4 forced host devices 49-56, ``threads`` 237 (module
#: docstring of :mod:`reprjax.host_threads`).  With several (e.g. forced) host devices ``auto`` runs ``sharded``
#: instead, OpenBLAS again at one thread: 237 configs/s on 2 forced devices and 225 on 4, against 216 and 175 for
#: ``threads`` in the same processes (and 107 and 52 for ``sharded`` with OpenBLAS's threads).
#:
#: Side by side, every worker runs the same number of runs, the group padded to a multiple of the workers; a group
#: that would leave a worker idle for long -- fewer than :data:`CPU_SPLIT_MIN_RUNS` per worker and not a multiple of
#: them, e.g. 3 seeds on 2 cores -- or whose runs together would hold more than :data:`CPU_THREADS_BYTES` runs in the
#: plain loop instead (3 runs on 2 cores, padded to 4: ``threads`` 13.4 s a run against 11.5 looped for infinite-NTK
#: ridge at n = 8192, 1.05 against 0.87 for Algorithm 1 at d = 64, n = 131072; same process, same groups).  The
#: loop holds OpenBLAS to one thread as well when no factorisation in the run is larger than
#: :data:`CPU_ONE_THREAD_MAX_FACTOR` (measured, 3 runs each: Algorithm 1 at d = 32, n = 8192, m = 512 0.072 s a run
#: against 0.122; eNTK ridge at n = 2048 0.316 against 0.347; but at n = 4096 2.46 against 2.32 and at n = 8192 9.3
#: against 7.0): OpenBLAS's idle threads keep spinning after each factorisation and slow XLA's next operations.
AUTO_EXECUTION = {"cpu": "threads", "gpu": "vmap", "cuda": "vmap", "rocm": "vmap", "tpu": "vmap"}
CPU_THREADS_BYTES = 4 * 2**30
CPU_SPLIT_MIN_RUNS = 4
CPU_ONE_THREAD_MAX_FACTOR = 2048

TARGETS: dict[str, Callable[..., Any]] = {
    "paper": targets_mod.paper_target,
    "single_index": targets_mod.single_index,
    "giant_step": targets_mod.giant_step,
    "staircase": targets_mod.staircase,
    "random_polynomial": targets_mod.random_polynomial,
    "transfer_pair": targets_mod.transfer_pair,
}


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
        return cls(name, tuple(sorted(kwargs.items())), normalise)

    def build(self, key: jax.Array, d: int) -> Any:
        out = TARGETS[self.name](key, d, **dict(self.kwargs))
        if self.normalise:
            out = tuple(t.normalise() for t in out) if isinstance(out, tuple) else out.normalise()
        return out

    def check(self, d: int) -> None:
        """Raise ``ValueError`` now (not mid-sweep) if the target cannot be built at dimension ``d``."""
        jax.eval_shape(lambda k: self.build(k, d), jax.random.key(0))

    def label(self) -> str:
        return self.name + "".join(f",{k}={v}" for k, v in self.kwargs)


@dataclasses.dataclass(frozen=True)
class Grid:
    """Runs = methods x targets x dims x n x widths x hyper-parameter grid x seeds (a full product).

    Attributes:
      methods: names from :data:`reprjax.methods.METHODS`.
      targets: target families.
      dims: input dimensions ``d``.
      n: sample counts, or a callable ``d -> sequence of n`` (e.g. a geometric grid scaled with ``d``).
      widths: network widths ``m``.
      hyper: ``{name: values}``; every combination is run (``{}``: defaults).
      seeds: number of seeds; run ``s`` uses ``jax.random.key(seed_offset + s)`` for its target and data, so every
        method and hyper-parameter sees the same target and samples for a given seed.
      method_hyper: per-method extra fixed hyper-parameters (``{"entk": {"solver": "cholesky"}}``).
      method_n_max: per-method cap on ``n`` (kernel ridge is ``O(n^3)``).
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

    def runs(self) -> list[dict[str, Any]]:
        """All runs as dicts (method, target, d, n, width, seed and each hyper-parameter), in a stable order."""
        names = [k for k, _ in self.hyper]
        combos = list(itertools.product(*[v for _, v in self.hyper])) or [()]
        extra = {m: dict(h) for m, h in self.method_hyper}
        caps = dict(self.method_n_max)
        out = []
        for method, target in itertools.product(self.methods, self.targets):
            get_method(method)
            for d in self.dims:
                ns = self.n(d) if callable(self.n) else self.n
                for n in ns:
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
        return next(t for t in self.targets if t.label() == label)


_RUN_FIELDS = ("method", "target", "d", "n", "width", "seed")


def _hyper_of(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k not in _RUN_FIELDS}


def _config_of(method: Method, run: dict[str, Any]) -> Any:
    return method.make_config(run["d"], run["n"], run["width"], _hyper_of(run))


@dataclasses.dataclass
class Group:
    """Runs sharing one compiled program."""

    method: Method
    d: int
    target: TargetSpec
    runs: list[dict[str, Any]]
    configs: list[Any]
    group_id: str

    @property
    def size(self) -> int:
        return len(self.runs)


def _stable_id(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_groups(grid: Grid, mask_samples: bool = False) -> list[Group]:
    """Group the grid's runs by (method, d, config structure); with ``mask_samples`` the sample count becomes the
    ``n_active`` leaf of a config at the group's largest ``n``."""
    buckets: dict[Any, list[tuple[dict[str, Any], Any]]] = {}
    order: list[Any] = []
    for run in grid.runs():
        method = get_method(run["method"])
        config = _config_of(method, run)
        if mask_samples and method.supports_mask:
            probe = with_n_active(config, 10**9, 2)  # the structure of a masked config, independent of n
            key = (run["method"], run["target"], run["d"], jax.tree.structure(probe))
        else:
            key = (run["method"], run["target"], run["d"], jax.tree.structure(config))
        if key not in buckets:
            buckets[key] = []
            order.append(key)
        buckets[key].append((run, config))
    groups = []
    for key in order:
        members = buckets[key]
        method = get_method(key[0])
        runs = [r for r, _ in members]
        configs = [c for _, c in members]
        if mask_samples and method.supports_mask:
            n_max = max(r["n"] for r in runs)
            configs = [with_n_active(_config_of(method, {**r, "n": n_max}), n_max, r["n"]) for r in runs]
        groups.append(Group(method, key[2], grid.target_spec(key[1]), runs, configs, _stable_id(runs)))
    return groups


# ------------------------------------------------------------------------------------------------ execution
class CompileCounter:
    """Counts XLA backend compilations (all programs, including small helper ops) while active."""

    count = 0
    _registered = False

    @classmethod
    def install(cls) -> None:
        if not cls._registered:
            def listener(name: str, *_: Any, **__: Any) -> None:
                if name == "/jax/core/compile/backend_compile_duration":
                    cls.count += 1

            jax.monitoring.register_event_duration_secs_listener(listener)
            cls._registered = True


def sharded_program(fn: Callable[..., Any], mesh: jax.sharding.Mesh) -> Callable[..., Any]:
    """``fn`` over a leading axis of runs split across ``mesh``'s ``runs`` axis, jitted.

    Per device, the runs are vmapped on accelerators and looped with ``lax.map`` on CPU.  Why not vmap on CPU:
    jaxlib's batched LAPACK kernels (Cholesky, eigh) fan their batch out onto XLA's intra-op thread pool and block
    until it is done; when several host devices execute at once they hold that pool's threads and the batch never
    runs.  Reproduced with 4 forced host devices on 2 cores: a vmapped Cholesky inside a loop hung in about half of
    the runs (gdb: ``lapack_spotrf_ffi`` -> ``ParallelBatchMap`` waiting on a ``BlockingCounter`` in every device
    thread); the ``lax.map`` form never hung in the same trials, and on CPU a batched factorisation runs one matrix
    at a time anyway.
    """
    spec = PartitionSpec("runs")
    per_device = host_threads.looped(fn) if mesh.devices.flat[0].platform == "cpu" else jax.vmap(fn)
    # check_vma=False: loops inside the runs carry constants (e.g. zeros) into per-device values; every value is
    # per-device here, nothing is replicated or reduced across the mesh
    return jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False))


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def _row_metrics(metrics: Any, i: int) -> dict[str, Any]:
    out = {}
    for field, value in vars(metrics).items():
        v = np.asarray(value)[i]
        out[field] = bool(v) if v.dtype == np.bool_ else float(v)
    return out


class Runner:
    """Runs groups on the chosen execution path; keeps one jitted program per (method, path)."""

    def __init__(self, grid: Grid, execution: str = "auto", devices: Sequence[jax.Device] | None = None):
        if execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
        self.grid = grid
        self.devices = list(devices) if devices is not None else jax.devices()
        self.platform = self.devices[0].platform
        self.auto = execution == "auto"
        self.execution = execution
        self.paths_used: dict[str, int] = {}
        self.mesh = jax.sharding.Mesh(np.asarray(self.devices), ("runs",))
        self._programs: dict[tuple[Any, ...], Callable[..., Any]] = {}
        self._cache_start: dict[tuple[Any, ...], int] = {}
        CompileCounter.install()

    def _program(self, group: Group, mode: str) -> Callable[..., Any]:
        key = (group.method, group.target, group.d, mode, tuple(self.devices) if mode == "sharded" else None)
        if key not in self._programs:
            program = _compiled_program(*key)
            self._programs[key] = program
            self._cache_start[key] = program._cache_size()
        return self._programs[key]

    def programs_compiled(self) -> int:
        """Programs this runner compiled (new jit cache entries): one per group structure and path."""
        return sum(p._cache_size() - self._cache_start[k] for k, p in self._programs.items())

    def seed_keys(self, group: Group) -> jax.Array:
        """One key per run: ``jax.random.key(seed_offset + seed)`` (its target and data are drawn from it)."""
        return jnp.stack([jax.random.key(self.grid.seed_offset + run["seed"]) for run in group.runs])

    def summary(self) -> str:
        """The execution choice and the paths it took, e.g. ``auto (vmap x12, loop x2)``."""
        used = ", ".join(f"{k} x{v}" for k, v in sorted(self.paths_used.items()))
        return f"{self.execution} ({used})" if used else self.execution

    def path(self, group: Group) -> str:
        """The execution path of ``group`` (``auto`` resolved per backend and group size)."""
        if not self.auto:
            return self.execution
        if self.platform != "cpu":
            return "sharded" if len(self.devices) > 1 else AUTO_EXECUTION.get(self.platform, "vmap")
        several_devices = len(self.devices) > 1
        workers = len(self.devices) if several_devices else host_threads.cpu_cores()
        balanced = group.size % workers == 0 or group.size >= CPU_SPLIT_MIN_RUNS * workers
        fits = _working_set(group) * workers <= CPU_THREADS_BYTES
        if workers > 1 and group.size > 1 and balanced and fits:
            return "sharded" if several_devices else AUTO_EXECUTION["cpu"]
        return "loop"

    def loop_blas_limit(self, group: Group) -> int | None:
        """OpenBLAS threads for the loop path: one under ``auto`` on CPU when the runs' factorisations are small."""
        small = _largest_factorisation(group) <= CPU_ONE_THREAD_MAX_FACTOR
        return 1 if self.auto and self.platform == "cpu" and small else None

    def run_group(self, group: Group) -> Any:
        """Metrics of every run of the group, stacked along a leading axis of length ``group.size``."""
        _check_target_kind(group)
        keys = self.seed_keys(group)
        path = self.path(group)
        self.paths_used[path] = self.paths_used.get(path, 0) + 1
        if path == "loop":
            single = self._program(group, "loop")
            with host_threads.blas_threads(self.loop_blas_limit(group)):
                return jax.block_until_ready(_stack([single(k, c) for k, c in zip(keys, group.configs)]))
        program = self._program(group, path)
        args = (keys, _stack(group.configs))
        if path == "vmap":
            return program(*args)
        if path == "threads":
            return host_threads.run_split(program, args)
        args = host_threads.pad_runs(args, len(self.devices))
        sharding = NamedSharding(self.mesh, PartitionSpec("runs"))
        if jax.process_count() > 1:  # pragma: no cover - needs several hosts
            args = jax.tree.map(lambda a: jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx]), args)
        else:
            args = jax.device_put(args, sharding)
        # host devices run side by side, one run each: OpenBLAS's own threads would only contend with them
        with host_threads.blas_threads(1 if self.platform == "cpu" else None):
            out = jax.block_until_ready(program(*args))
        if jax.process_count() > 1:  # pragma: no cover
            from jax.experimental import multihost_utils

            out = multihost_utils.process_allgather(out, tiled=True)
        return jax.tree.map(lambda a: a[: group.size], out)


@functools.lru_cache(maxsize=256)
def _compiled_program(method: Method, target: TargetSpec, d: int, mode: str,
                      devices: tuple[jax.Device, ...] | None) -> Callable[..., Any]:
    """The jitted program of one group structure, shared by every sweep of this process (so a second sweep of the
    same grid reuses the compilations of the first)."""
    fn = functools.partial(_run_from_seed, method, target, d)
    if mode == "sharded":
        return sharded_program(fn, jax.sharding.Mesh(np.asarray(devices), ("runs",)))
    if mode == "threads":
        return jax.jit(host_threads.looped(fn))
    return jax.jit(jax.vmap(fn) if mode == "vmap" else fn)


def _run_sizes(group: Group) -> tuple[int, int]:
    """``(n, width)`` of the group's runs (transfer: of its head's Algorithm 1 config; 0 where a config has none)."""
    config = group.configs[0]
    if isinstance(config, TransferConfig):  # transfer wraps an Algorithm 1 config
        config = config.head
    return getattr(config, "n", 0), getattr(getattr(config, "network", None), "width", 0)


def _working_set(group: Group) -> float:
    """Rough bytes one run holds at once: samples, features and (kernels) Gram matrices, float32."""
    n, width = _run_sizes(group)
    per_run = 4.0 * n * (group.d + 3 * width) + 4.0 * 3 * width * width
    if group.method.name in ("entk", "ntk_infinite"):
        per_run += 4.0 * 3 * n * n
    return per_run


def _largest_factorisation(group: Group) -> int:
    """Order of the largest matrix a run factorises: ``n`` for kernel ridge, at most the width for the network's
    ridge head (primal ``m x m`` when ``n > m``, dual ``n x n`` otherwise), none for optax training."""
    n, width = _run_sizes(group)
    if group.method.name in ("entk", "ntk_infinite"):
        return n
    if group.method.name == "multistep":
        return 0
    return min(n, width)


def _run_from_seed(method: Method, target: TargetSpec, d: int, seed_key: jax.Array, config: Any) -> Any:
    """One run from its seed key, traced into the program: the target from ``fold_in(key, 0)``, the method's
    streams from ``fold_in(key, 1)`` (so building targets costs nothing outside the compiled program)."""
    built = target.build(jax.random.fold_in(seed_key, 0), d)
    if isinstance(built, tuple) and not method.needs_pair:
        built = built[1]  # a (source, target) pair scores single-task methods on its target head
    return method.run(jax.random.fold_in(seed_key, 1), built, config)


def _check_target_kind(group: Group) -> None:
    is_pair = isinstance(jax.eval_shape(lambda k: group.target.build(k, group.d), jax.random.key(0)), tuple)
    if group.method.needs_pair and not is_pair:
        raise ValueError(f"method {group.method.name!r} needs a (source, target) pair target such as "
                         f"'transfer_pair', got {group.target.name!r}")


def _device_label(devices: Sequence[jax.Device]) -> str:
    d = devices[0]
    kind = getattr(d, "device_kind", d.platform)
    return f"{d.platform}:{kind} x{len(devices)}"


def _group_rows(group: Group, metrics: Any | None, error: str | None, seconds: float, device: str,
                attempt: str) -> list[dict[str, Any]]:
    rows = []
    for i, run in enumerate(group.runs):
        row = dict(run)
        row.update(group_id=group.group_id, group_size=group.size, attempt=attempt, device=device,
                   wall_time_s=seconds / group.size)
        if metrics is None:
            row.update(status="failed", error=error)
        else:
            values = _row_metrics(metrics, i)
            failed = values.pop("failed", False) or not all(np.isfinite(v) for k, v in values.items()
                                                            if k != "alignment")
            row.update(values)
            row.update(status="failed" if failed else "ok", error="NaN/inf outcome" if failed else None)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ storage
def _append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":  # a write cut by a kill: start our rows on a fresh line
                text = "\n" + text
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a write cut by a kill: its group is incomplete and will be re-run
    return rows


def _complete_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per group, the rows of its last complete attempt."""
    by_attempt: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_attempt.setdefault((row["group_id"], row["attempt"]), []).append(row)
    latest: dict[str, list[dict[str, Any]]] = {}
    for (gid, _), group_rows in by_attempt.items():
        if len(group_rows) == group_rows[0]["group_size"]:
            latest[gid] = group_rows
    return [r for rows_ in latest.values() for r in rows_]


def load_results(out_dir: str | os.PathLike) -> pd.DataFrame:
    """The finished rows of a sweep directory as a DataFrame (one row per run)."""
    rows = _complete_rows(_read_rows(Path(out_dir) / RESULTS_FILE))
    return pd.DataFrame(rows)


def manifest_of(grid: Grid, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON description of the grid (what identifies a results directory)."""
    return dict(targets=[t.label() for t in grid.targets], runs=_stable_id(grid.runs()), n_runs=len(grid.runs()),
                **(extra or {}))


class ConfigurationMismatch(ValueError):
    """The output directory holds results of a different sweep."""


def prepare_directory(out_dir: str | os.PathLike, manifest: dict[str, Any], overwrite: bool = False) -> Path:
    """Create ``out_dir`` or check that it holds the same sweep; never silently mixes two sweeps' results."""
    path = Path(out_dir)
    mfile = path / MANIFEST_FILE
    if mfile.exists():
        old = json.loads(mfile.read_text())
        if old != manifest:
            if not overwrite:
                raise ConfigurationMismatch(
                    f"{path} holds results of a different configuration ({MANIFEST_FILE} differs); "
                    f"choose another --out or pass --overwrite to replace them")
            (path / RESULTS_FILE).unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    mfile.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=_json_default))
    return path


@dataclasses.dataclass
class SweepReport:
    groups_total: int
    groups_run: int
    groups_skipped: int
    groups_failed: int
    programs_compiled: int
    backend_compiles: int
    seconds: float
    execution: str
    device: str


def run_sweep(
    grid: Grid,
    out_dir: str | os.PathLike,
    execution: str = "auto",
    mask_samples: bool = False,
    progress: bool = True,
    retry_failed: bool = False,
    manifest_extra: dict[str, Any] | None = None,
    overwrite: bool = False,
    on_group: Callable[[Group], None] | None = None,
) -> SweepReport:
    """Run every group of ``grid`` not already finished in ``out_dir``, appending rows as groups finish.

    Args:
      grid: what to run.
      out_dir: results directory (created; must hold this same sweep if it exists, unless ``overwrite``).
      execution: ``auto``, ``loop``, ``threads``, ``vmap`` or ``sharded`` (module docstring).
      mask_samples: share one program across the sample counts of a group (0/1 masks).
      progress: show a progress bar with ETA.
      retry_failed: re-run groups recorded as failed.
      manifest_extra: more fields identifying the sweep (e.g. the experiment's config).
      overwrite: replace the results of a different sweep in ``out_dir``.
      on_group: called before each group runs (tests use it to interrupt a sweep).
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    groups = make_groups(grid, mask_samples)  # builds every config: bad input raises before anything is written
    for target, d in sorted({(g.target, g.d) for g in groups}, key=lambda td: (td[0].label(), td[1])):
        target.check(d)
    path = prepare_directory(out_dir, manifest_of(grid, manifest_extra), overwrite)
    done = _complete_rows(_read_rows(path / RESULTS_FILE))
    finished = {r["group_id"] for r in done if retry_failed is False or r["status"] == "ok"}
    if retry_failed:
        failed_groups = {r["group_id"] for r in done if r["status"] != "ok"}
        finished -= failed_groups
    todo = [g for g in groups if g.group_id not in finished]
    runner = Runner(grid, execution)
    device = _device_label(runner.devices)
    compiles0 = CompileCounter.count
    is_writer = jax.process_index() == 0
    n_failed = 0
    bar = tqdm(total=sum(g.size for g in todo), unit="run", disable=not progress, desc="sweep")
    for group in todo:
        if on_group is not None:
            on_group(group)
        attempt = uuid.uuid4().hex[:12]
        t0 = time.perf_counter()
        try:
            metrics = jax.block_until_ready(runner.run_group(group))
            error = None
        except Exception as err:  # noqa: BLE001 - a failing group is recorded and the sweep goes on
            metrics, error = None, f"{type(err).__name__}: {err}".strip()[:2000]
            if os.environ.get("REPRJAX_DEBUG"):
                traceback.print_exc()
        rows = _group_rows(group, metrics, error, time.perf_counter() - t0, device, attempt)
        n_failed += any(r["status"] != "ok" for r in rows)
        if is_writer:
            _append_rows(path / RESULTS_FILE, rows)
        bar.update(group.size)
    bar.close()
    return SweepReport(groups_total=len(groups), groups_run=len(todo), groups_skipped=len(groups) - len(todo),
                       groups_failed=n_failed, programs_compiled=runner.programs_compiled(),
                       backend_compiles=CompileCounter.count - compiles0, seconds=time.perf_counter() - start,
                       execution=runner.summary(), device=device)
