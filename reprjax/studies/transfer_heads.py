"""Transferred heads with one source network per ``(d, source quality, seed)``: the runs the transfer study makes
itself, beside its sweep (docs/transfer.md, "Cost").

A ``transfer`` run of the sweep learns its source ``W_1`` (Algorithm 1 on ``source_n_over_d2 * d^2`` streamed samples
of the source head) and then refits the head on ``N`` samples; every ``N`` and every run of a group would relearn the
same source, which at ``d = 256``, ``n_source = 8 d^2`` costs tens of seconds per run on two cores.  Here the source
is learned once per ``(d, source_n_over_d2, seed)`` (:func:`reprjax.methods.algorithm1.learn_first_layer`: steps 0-2
only, no source head) and the heads of every ``N`` are fitted from it in one vmapped program, on the first ``N`` of
one stream of target samples (0/1 masks, the ``n_active`` leaf).  The keys are those the sweep's ``transfer`` method
uses (:func:`reprjax.sweep.execution.run_from_seed`, :func:`reprjax.methods.registry.run_transfer`), so a row here is
the row the sweep would write for that run; it is stored in the sweep's row format (:func:`reprjax.sweep.store.
group_rows`) in :data:`HEADS_FILE`, one group per source, and a finished source is not run again (resume).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import jax
import pandas as pd

from reprjax import sweep
from reprjax.methods import algorithm1
from reprjax.sweep import store
from reprjax.sweep.execution import device_label, stack
from reprjax.sweep.grid import stable_id

#: The rows of the transferred heads, in the results directory beside the sweep's rows.
HEADS_FILE = "transfer_heads.jsonl"


def heads_grid(spec: sweep.TargetSpec, dims: tuple[int, ...], N: tuple[int, ...], width: int, seeds: int,
               source_n_over_d2: tuple[int, ...], n_test: int, head_preprocess: bool = True) -> sweep.Grid:
    """The ``transfer`` runs: every ``d``, ``N``, source quality and seed (one row each).

    ``head_preprocess=False`` fits the head without re-estimating ``alpha + <beta, x>`` on the ``N`` target samples
    (the source is always learned with Algorithm 1's pre-processing): ``beta`` is a ``d``-vector, and its estimate
    on ``N`` samples adds about ``d / N`` to the normalised error (docs/transfer.md, "Why the slope is not 0").
    """
    hyper = (("source_n_over_d2", tuple(source_n_over_d2)), ("n_test", (n_test,)))
    if not head_preprocess:
        hyper += (("preprocess", (False,)),)
    return sweep.Grid(methods=("transfer",), targets=(spec,), dims=dims, n=N, widths=(width,), seeds=seeds,
                      hyper=hyper)


def source_groups(grid: sweep.Grid) -> list[sweep.Group]:
    """One group per ``(d, source_n_over_d2, seed)``: its runs are the ``N`` of that source, masked at the
    largest ``N`` (group ids: :func:`reprjax.sweep.grid.stable_id` of the runs, as the sweep's)."""
    out = []
    for group in sweep.make_groups(grid, mask_samples=True):
        for seed in sorted({run["seed"] for run in group.runs}):
            idx = [i for i, run in enumerate(group.runs) if run["seed"] == seed]
            runs = [group.runs[i] for i in idx]
            out.append(dataclasses.replace(group, runs=runs, configs=[group.configs[i] for i in idx],
                                           group_id=stable_id(runs)))
    return out


@functools.partial(jax.jit, static_argnums=(0, 1))
def _heads(spec: sweep.TargetSpec, d: int, seed_key: jax.Array, configs: Any) -> Any:
    source, target = spec.build(jax.random.fold_in(seed_key, 0), d)
    key = jax.random.fold_in(seed_key, 1)  # the method key of run_from_seed
    first = jax.tree.map(lambda a: a[0], configs)
    source_config = first.source_config(d).replace(preprocess=True)  # Algorithm 1 as the paper runs it
    learned = algorithm1.learn_first_layer(jax.random.fold_in(key, 1), source, source_config)
    return jax.vmap(lambda c: algorithm1.transfer(key, learned, target, c.head))(configs)


def run_group(group: sweep.Group, seed_offset: int = 0) -> Any:
    """Metrics of every run of one source group (stacked along the runs), the source learned once."""
    seed = group.runs[0]["seed"]
    return _heads(group.target, group.d, jax.random.key(seed_offset + seed), stack(group.configs))


def run_heads(grid: sweep.Grid, out_dir: str | Path, progress: bool = True) -> int:
    """Run every source group of ``grid`` not yet in ``out_dir / HEADS_FILE`` (resume); returns how many ran.

    A group that raises is stored as failed (its error in every row), as the sweep stores one, and not rerun.
    """
    from tqdm.auto import tqdm

    path = Path(out_dir) / HEADS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {row["group_id"] for row in store.read_rows(path)} if path.exists() else set()
    todo = [g for g in source_groups(grid) if g.group_id not in done]
    device = device_label(jax.devices())
    for group in tqdm(todo, unit="source", disable=not progress, desc="transfer heads"):
        t0 = time.perf_counter()
        try:
            metrics, error = jax.block_until_ready(run_group(group, grid.seed_offset)), None
        except Exception as err:  # noqa: BLE001 - a failing source is recorded and the others go on
            metrics, error = None, f"{type(err).__name__}: {err}".strip()[:2000]
        rows = store.group_rows(group, metrics, error, time.perf_counter() - t0, device, "heads")
        store.append_rows(path, rows)
    return len(todo)


def load_heads(grid: sweep.Grid, out_dir: str | Path) -> pd.DataFrame:
    """The stored rows of ``grid``'s source groups (the last write of each group), as a results table."""
    path = Path(out_dir) / HEADS_FILE
    wanted = {g.group_id for g in source_groups(grid)}
    rows = [r for r in store.read_rows(path) if r["group_id"] in wanted] if path.exists() else []
    last: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        last.setdefault(row["group_id"], [])
        if len(last[row["group_id"]]) == row["group_size"]:  # a rewrite of a finished group: keep the newest
            last[row["group_id"]] = []
        last[row["group_id"]].append(row)
    return pd.DataFrame([r for group in last.values() for r in group])


__all__ = ["HEADS_FILE", "heads_grid", "load_heads", "run_group", "run_heads", "source_groups"]
