"""Running a sweep: expand and check the grid, skip what is on disk, run each group on its executor, store rows."""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from reprjax.sweep import store
from reprjax.sweep.execution import Executor, backend_compiles, device_label
from reprjax.sweep.executors import make_executor
from reprjax.sweep.grid import Grid, Group, make_groups


@dataclasses.dataclass
class SweepReport:
    """What a call of :func:`run_sweep` did."""

    groups_total: int
    groups_run: int
    groups_skipped: int
    groups_failed: int
    programs_compiled: int
    backend_compiles: int
    seconds: float
    execution: str
    device: str


def seed_keys(grid: Grid, group: Group) -> jax.Array:
    """One key per run: ``jax.random.key(seed_offset + seed)`` (its target and data are drawn from it)."""
    return jnp.stack([jax.random.key(grid.seed_offset + run["seed"]) for run in group.runs])


def check_target_kind(group: Group) -> None:
    """Raise ``ValueError`` if the group's method needs a ``(source, target)`` pair and its target is not one."""
    if group.method.needs_pair and not group.target.is_pair(group.d):
        raise ValueError(f"method {group.method.name!r} needs a (source, target) pair target such as "
                         f"'transfer_pair', got {group.target.name!r}")


def run_group(executor: Executor, grid: Grid, group: Group) -> Any:
    """Metrics of every run of ``group``, stacked along a leading axis of length ``group.size``."""
    check_target_kind(group)
    return jax.block_until_ready(executor.run(group, seed_keys(grid, group)))


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

    Every process of a multi-host job (``jax.distributed``) runs the same groups in the same order; only process 0
    writes.

    Args:
      grid: what to run.
      out_dir: results directory (created; must hold this same sweep if it exists, unless ``overwrite``).
      execution: ``auto``, ``loop``, ``threads``, ``vmap`` or ``sharded`` (:mod:`reprjax.sweep.execution`).
      mask_samples: share one program across the sample counts of a group (0/1 masks).
      progress: show a progress bar with ETA.
      retry_failed: re-run groups recorded as failed.
      manifest_extra: more fields identifying the sweep (e.g. the experiment's config).
      overwrite: replace the results of a different sweep in ``out_dir``.
      on_group: called before each group runs (tests use it to interrupt a sweep).

    Returns:
      A :class:`SweepReport`.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    executor = make_executor(execution)
    groups = make_groups(grid, mask_samples)  # builds every config: bad input raises before anything is written
    for target, d in sorted({(g.target, g.d) for g in groups}, key=lambda td: (td[0].label(), td[1])):
        target.check(d)
    manifest = store.manifest_of(grid, manifest_extra)
    replaced = store.check_directory(out_dir, manifest, overwrite)  # every process reads before any writes
    finished = set() if replaced else store.finished_groups(Path(out_dir), retry_failed)
    todo = [g for g in groups if g.group_id not in finished]
    is_writer = jax.process_index() == 0
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("reprjax.sweep: results directory read")
    path = store.prepare_directory(out_dir, manifest, overwrite) if is_writer else Path(out_dir)
    device = device_label(executor.devices)
    compiles0, programs0 = backend_compiles(), executor.programs.compiled
    n_failed = 0
    bar = tqdm(total=sum(g.size for g in todo), unit="run", disable=not progress, desc="sweep")
    for group in todo:
        if on_group is not None:
            on_group(group)
        attempt = uuid.uuid4().hex[:12]
        t0 = time.perf_counter()
        try:
            metrics, error = run_group(executor, grid, group), None
        except Exception as err:  # noqa: BLE001 - a failing group is recorded and the sweep goes on
            metrics, error = None, f"{type(err).__name__}: {err}".strip()[:2000]
            if os.environ.get("REPRJAX_DEBUG"):
                traceback.print_exc()
        seconds = time.perf_counter() - t0
        try:
            rows = store.group_rows(group, metrics, error, seconds, device, attempt)
        except Exception as err:  # noqa: BLE001 - an outcome the store cannot write is a failed group, not a crash
            rows = store.group_rows(group, None, f"outcome not storable: {type(err).__name__}: {err}"[:2000],
                                    seconds, device, attempt)
        n_failed += any(r["status"] != "ok" for r in rows)
        if is_writer:
            store.append_rows(path / store.RESULTS_FILE, rows)
        bar.update(group.size)
    bar.close()
    return SweepReport(groups_total=len(groups), groups_run=len(todo), groups_skipped=len(groups) - len(todo),
                       groups_failed=n_failed, programs_compiled=executor.programs.compiled - programs0,
                       backend_compiles=backend_compiles() - compiles0, seconds=time.perf_counter() - start,
                       execution=executor.summary(), device=device)
