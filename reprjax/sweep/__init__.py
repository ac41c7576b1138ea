"""Sweep engine: a declarative grid of runs, grouped by static shapes, run by an executor, resumable on disk.

Three layers, each a module:

* :mod:`reprjax.sweep.grid`: :class:`Grid` and :class:`TargetSpec`, expansion into runs (each hyper-parameter for
  the methods that declare it), grouping by PyTree structure (:func:`make_groups`);
* :mod:`reprjax.sweep.execution` (with :mod:`reprjax.sweep.cpu` and :mod:`reprjax.sweep.executors`): executors
  placing a group's runs on hardware
  (``loop``, ``vmap``, ``sharded``, CPU ``threads``; ``auto`` per backend), one program cache;
* :mod:`reprjax.sweep.store`: JSONL rows, the manifest, resuming.

:func:`run_sweep` (:mod:`reprjax.sweep.engine`) ties them together; :func:`load_results` reads the rows back.
"""

from reprjax.sweep import host_threads
from reprjax.methods.registry import Cost
from reprjax.sweep.cpu import CPU_ONE_THREAD_MAX_FACTOR, CPU_SPLIT_MIN_RUNS, CPU_THREADS_BYTES, CpuExecutor
from reprjax.sweep.engine import SweepReport, run_group, run_sweep, seed_keys
from reprjax.sweep.execution import (
    AUTO_EXECUTION,
    EXECUTIONS,
    PROGRAMS,
    AcceleratorExecutor,
    Executor,
    ProgramCache,
    backend_compiles,
    release_programs,
    sharded_program,
)
from reprjax.sweep.executors import make_executor
from reprjax.sweep.grid import TARGETS, Grid, Group, TargetSpec, make_groups
from reprjax.sweep.store import (
    MANIFEST_FILE,
    RESULTS_FILE,
    ConfigurationMismatch,
    load_results,
    manifest_of,
    prepare_directory,
)

__all__ = [
    "AUTO_EXECUTION",
    "CPU_ONE_THREAD_MAX_FACTOR",
    "CPU_SPLIT_MIN_RUNS",
    "CPU_THREADS_BYTES",
    "EXECUTIONS",
    "MANIFEST_FILE",
    "PROGRAMS",
    "RESULTS_FILE",
    "TARGETS",
    "AcceleratorExecutor",
    "ConfigurationMismatch",
    "Cost",
    "CpuExecutor",
    "Executor",
    "Grid",
    "Group",
    "ProgramCache",
    "SweepReport",
    "TargetSpec",
    "backend_compiles",
    "host_threads",
    "load_results",
    "make_executor",
    "make_groups",
    "manifest_of",
    "prepare_directory",
    "run_group",
    "run_sweep",
    "seed_keys",
    "release_programs",
    "sharded_program",
]
