"""The execution layer of a sweep: executors place a group's runs on hardware, through one program cache.

Paths for a group (``execution``):

* ``loop``: one jitted run per member, a Python loop;
* ``vmap``: one jitted ``vmap`` over the members;
* ``threads``: the members split into one chunk per CPU core, each chunk a jitted ``lax.map`` on its own worker
  thread (:func:`reprjax.sweep.host_threads.run_split`);
* ``sharded``: the members split over a ``("runs",)`` mesh of all devices by ``jax.shard_map``, inputs placed by a
  ``NamedSharding`` and padded to a multiple of the device count (:func:`sharded_program`);
* ``auto``: the path the benchmark harness measured fastest, chosen per backend and group by the executor.

:func:`reprjax.sweep.executors.make_executor` gives a :class:`reprjax.sweep.cpu.CpuExecutor` on CPU (every OpenBLAS
thread and side-by-side decision lives there) and an :class:`AcceleratorExecutor` elsewhere; this module imports
neither of those.  Many hosts: after
``jax.distributed.initialize()`` every process runs the same groups in the same order (SPMD), the mesh spans all
global devices, inputs are built with ``jax.make_array_from_callback`` and the outputs gathered on every process.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from reprjax.sweep import host_threads
from reprjax.sweep.grid import Group, TargetSpec

#: What ``execution="auto"`` runs per backend with one device (several devices: ``sharded``).  Accelerators fill
#: the device with many small runs by ``vmap``; on CPU see :class:`reprjax.sweep.cpu.CpuExecutor`
#: (measurements: docs/measurements.md, "Sweep execution on CPU").
AUTO_EXECUTION = {"cpu": "threads", "gpu": "vmap", "cuda": "vmap", "rocm": "vmap", "tpu": "vmap"}

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compiles = {"count": 0, "listening": False}


def backend_compiles() -> int:
    """XLA backend compilations in this process since the first call (all programs, small helper ops included).

    Counted through ``jax.monitoring``'s duration events; where this jax reports no such event the count stays 0.
    """
    if not _compiles["listening"]:
        _compiles["listening"] = True

        def listener(name: str, *_: Any, **__: Any) -> None:
            if name == _COMPILE_EVENT:
                _compiles["count"] += 1

        try:
            jax.monitoring.register_event_duration_secs_listener(listener)
        except AttributeError:  # pragma: no cover - a jax without the monitoring hooks
            pass
    return _compiles["count"]


def _signature(args: Any) -> tuple[Any, ...]:
    """What a jitted function's cache is keyed on: the PyTree structure (static fields included) and each leaf's
    shape, dtype and weak type."""
    leaves, treedef = jax.tree.flatten(args)
    return treedef, tuple(x if isinstance(x, jax.tree_util.PyTreeDef) else
                          (np.shape(x), str(getattr(x, "dtype", type(x).__name__)), getattr(x, "weak_type", None))
                          for x in leaves)


class ProgramCache:
    """The one cache of jitted programs: one per (method, target, d, path, devices), shared by every sweep of the
    process, so that a second sweep of the same grid reuses the compilations of the first.

    It keeps at most ``max_programs`` programs and ``max_signatures`` compiled signatures in all (a program called
    with new shapes, e.g. another sample count, compiles again and holds every executable it compiled), dropping the
    least recently used programs first (their compiled code is freed): every compiled XLA CPU kernel holds its own
    memory maps, about 420-560 for an Algorithm 1 signature and 710-720 for a multi-step one, and a process that
    keeps every program ever compiled reaches the kernel's ``vm.max_map_count`` (65,530 by default) and crashes
    inside the compiler (docs/measurements.md, "Compiled programs and the memory-map limit").

    ``compiled`` counts the distinct input signatures the programs were called with: each is one compilation (a
    dropped program called again compiles again and counts again).
    """

    def __init__(self, max_programs: int = 32, max_signatures: int = 48) -> None:
        if max_programs < 1:
            raise ValueError(f"max_programs must be >= 1, got {max_programs}")
        if max_signatures < 1:
            raise ValueError(f"max_signatures must be >= 1, got {max_signatures}")
        self.max_programs = max_programs
        self.max_signatures = max_signatures
        self._programs: OrderedDict[tuple[Any, ...], Callable[..., Any]] = OrderedDict()
        self._seen: set[tuple[Any, ...]] = set()  # (key, signature) compiled by the kept programs
        self._lock = threading.Lock()
        self.compiled = 0

    def __len__(self) -> int:
        return len(self._programs)

    @property
    def signatures(self) -> int:
        """Compiled signatures the kept programs hold."""
        return sum(1 for key, _ in self._seen if key in self._programs)

    def get(self, key: tuple[Any, ...], build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
        """The program stored under ``key`` (built by ``build()`` the first time), counting new signatures."""
        with self._lock:
            if key in self._programs:
                self._programs.move_to_end(key)
                return self._programs[key]
            program = self._programs[key] = self._counting(key, build())
            self._seen = {sig for sig in self._seen if sig[0] != key}  # calls of an earlier, dropped program
            self._evict(keep=key)
            return program

    def clear(self) -> None:
        """Drop every program (the count of compilations is kept)."""
        with self._lock:
            self._programs.clear()
            self._seen.clear()

    def _evict(self, keep: tuple[Any, ...]) -> None:
        """Drop least recently used programs other than ``keep`` while over either bound (lock held)."""
        while len(self._programs) > self.max_programs or self.signatures > self.max_signatures:
            oldest = next((k for k in self._programs if k != keep), None)
            if oldest is None:
                return
            del self._programs[oldest]
            self._seen = {sig for sig in self._seen if sig[0] != oldest}

    def _counting(self, key: tuple[Any, ...], program: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            sig = (key, _signature(args))
            with self._lock:
                if sig not in self._seen:
                    self._seen.add(sig)
                    self.compiled += 1
                    self._evict(keep=key)
            return program(*args)

        return call


PROGRAMS = ProgramCache()


def release_programs() -> None:
    """Free the compiled code this process holds: the sweep's programs and jax's compilation caches.

    For long-lived processes that compile many distinct programs (test sessions, benchmark suites, notebooks): see
    :class:`ProgramCache` for the memory-map limit this keeps clear of.
    """
    PROGRAMS.clear()
    jax.clear_caches()
    gc.collect()


def sharded_program(fn: Callable[..., Any], mesh: jax.sharding.Mesh) -> Callable[..., Any]:
    """``fn`` over a leading axis of runs split across ``mesh``'s ``runs`` axis, jitted.

    Per device the runs are vmapped on accelerators and looped with ``lax.map`` on CPU: jaxlib's batched LAPACK
    kernels wait on XLA's intra-op pool and can hang when several host devices execute at once (docs/
    measurements.md, "Batched factorisations on host devices").

    Args:
      fn: one run, ``fn(*args) -> outputs``.
      mesh: a one-axis mesh named ``runs``.

    Returns:
      The jitted program taking and returning arrays with a leading axis of runs (a multiple of the mesh size).
    """
    spec = PartitionSpec("runs")
    per_device = host_threads.looped(fn) if mesh.devices.flat[0].platform == "cpu" else jax.vmap(fn)
    # check_vma=False: loops inside the runs carry constants (e.g. zeros) into per-device values; every value is
    # per-device here, nothing is replicated or reduced across the mesh
    return jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False))


def run_from_seed(method: Any, target: TargetSpec, d: int, seed_key: jax.Array, config: Any) -> Any:
    """One run from its seed key, traced into the program: the target from ``fold_in(key, 0)``, the method's
    streams from ``fold_in(key, 1)`` (so building targets costs nothing outside the compiled program)."""
    built = target.build(jax.random.fold_in(seed_key, 0), d)
    if isinstance(built, tuple) and not method.needs_pair:
        built = built[1]  # a (source, target) pair scores single-task methods on its target head
    return method.run(jax.random.fold_in(seed_key, 1), built, config)


def stack(trees: Sequence[Any]) -> Any:
    """PyTrees of one structure stacked along a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def device_label(devices: Sequence[jax.Device]) -> str:
    """``platform:kind xcount`` of a device list (the ``device`` column of a row)."""
    d = devices[0]
    return f"{d.platform}:{getattr(d, 'device_kind', d.platform)} x{len(devices)}"


class Executor:
    """Runs the groups of a sweep on a list of devices: picks each group's path and runs it.

    Subclasses decide what ``auto`` means (:meth:`auto_path`) and which BLAS thread limit a path runs under
    (:meth:`blas_limit`); this class implements the paths.
    """

    def __init__(self, execution: str = "auto", devices: Sequence[jax.Device] | None = None,
                 programs: ProgramCache = PROGRAMS):
        if execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
        self.execution = execution
        self.devices = list(devices) if devices is not None else jax.devices()
        self.platform = self.devices[0].platform
        self.mesh = jax.sharding.Mesh(np.asarray(self.devices), ("runs",))
        self.programs = programs
        self.paths_used: dict[str, int] = {}

    def auto_path(self, group: Group) -> str:
        """The path ``auto`` takes for ``group``."""
        raise NotImplementedError

    def blas_limit(self, group: Group, path: str) -> int | None:
        """OpenBLAS threads while ``group`` runs on ``path`` (``None``: leave the library alone)."""
        return None

    def path(self, group: Group) -> str:
        """The execution path of ``group`` (``auto`` resolved per backend and group)."""
        return self.auto_path(group) if self.execution == "auto" else self.execution

    def summary(self) -> str:
        """The execution choice and the paths it took, e.g. ``auto (vmap x12, loop x2)``."""
        used = ", ".join(f"{k} x{v}" for k, v in sorted(self.paths_used.items()))
        return f"{self.execution} ({used})" if used else self.execution

    def program(self, group: Group, path: str) -> Callable[..., Any]:
        """The jitted program of ``group``'s structure on ``path`` (from the process's one cache)."""
        devices = tuple(self.devices) if PATHS[path].per_devices else None
        key = (group.method, group.target, group.d, path, devices)
        return self.programs.get(key, functools.partial(_build_program, *key))

    def run(self, group: Group, keys: jax.Array) -> Any:
        """Metrics of every run of ``group`` (seed keys ``keys``), stacked along a leading axis of runs."""
        path = self.path(group)
        self.paths_used[path] = self.paths_used.get(path, 0) + 1
        program = self.program(group, path)
        with host_threads.blas_threads(self.blas_limit(group, path)):
            return PATHS[path].call(self, program, keys, group.configs)

    def _run_sharded(self, program: Callable[..., Any], args: Any, size: int) -> Any:
        # the configs travel as their leaves: a config rebuilt outside the program from arrays that span other
        # processes' devices could not be validated (its values are not readable here)
        leaves, treedef = jax.tree.flatten(host_threads.pad_runs(args, len(self.devices)))
        sharding = NamedSharding(self.mesh, PartitionSpec("runs"))
        if jax.process_count() > 1:
            leaves = [jax.make_array_from_callback(a.shape, sharding, lambda idx, a=a: a[idx]) for a in leaves]
        else:
            leaves = jax.device_put(leaves, sharding)
        out = jax.block_until_ready(program(treedef, *leaves))
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            out = multihost_utils.process_allgather(out, tiled=True)
        return jax.tree.map(lambda a: a[:size], out)


def _build_program(method: Any, target: TargetSpec, d: int, path: str,
                   devices: tuple[jax.Device, ...] | None) -> Callable[..., Any]:
    return PATHS[path].build(functools.partial(run_from_seed, method, target, d), devices)


def _build_sharded(fn: Callable[..., Any], devices: tuple[jax.Device, ...] | None) -> Callable[..., Any]:
    sharded = sharded_program(fn, jax.sharding.Mesh(np.asarray(devices), ("runs",)))
    return jax.jit(lambda treedef, *leaves: sharded(*jax.tree.unflatten(treedef, leaves)), static_argnums=0)


@dataclasses.dataclass(frozen=True)
class ExecutionPath:
    """How one execution path runs a group.

    Attributes:
      build: ``(one run's function, devices) -> program``, jitted.
      call: ``(executor, program, seed keys, configs) -> stacked outputs``.
      per_devices: the program depends on the device list (it is cached per list).
    """

    build: Callable[[Callable[..., Any], tuple[jax.Device, ...] | None], Callable[..., Any]]
    call: Callable[[Executor, Callable[..., Any], jax.Array, Sequence[Any]], Any]
    per_devices: bool = False


#: The execution paths by name (module docstring); ``auto`` resolves to one of them per group.
PATHS: dict[str, ExecutionPath] = {
    "loop": ExecutionPath(
        build=lambda fn, _: jax.jit(fn),
        call=lambda _, program, keys, configs: jax.block_until_ready(
            stack([program(k, c) for k, c in zip(keys, configs)]))),
    "threads": ExecutionPath(
        build=lambda fn, _: jax.jit(host_threads.looped(fn)),
        call=lambda _, program, keys, configs: host_threads.run_split(program, (keys, stack(configs)))),
    "vmap": ExecutionPath(
        build=lambda fn, _: jax.jit(jax.vmap(fn)),
        call=lambda _, program, keys, configs: jax.block_until_ready(program(keys, stack(configs)))),
    "sharded": ExecutionPath(
        build=_build_sharded,
        call=lambda executor, program, keys, configs: executor._run_sharded(program, (keys, stack(configs)),
                                                                            len(configs)),
        per_devices=True),
}
EXECUTIONS = ("auto", *PATHS)


class AcceleratorExecutor(Executor):
    """GPUs and TPUs: ``auto`` is ``vmap`` on one device and ``sharded`` over several; no BLAS policy."""

    def auto_path(self, group: Group) -> str:
        return "sharded" if len(self.devices) > 1 else AUTO_EXECUTION.get(self.platform, "vmap")
