"""The store of a sweep: one JSON row per run in ``results.jsonl``, the manifest ``sweep.json``, and resuming.

Each finished group's rows are appended in one write, flushed and fsynced: a sweep killed (even by SIGKILL) loses
at most the group in flight, and re-running the same grid skips the groups already on disk.  A group that raised
is recorded as failed rows carrying the error; runs whose outcome is NaN/inf are rows with ``status = "failed"``.
The manifest describes the grid, so a directory is never silently shared by two different sweeps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reprjax.sweep.grid import Grid, Group, stable_id

RESULTS_FILE = "results.jsonl"
MANIFEST_FILE = "sweep.json"


class ConfigurationMismatch(ValueError):
    """The output directory holds results of a different sweep."""


def json_default(obj: Any) -> Any:
    """JSON for numpy scalars and tuples; anything else as its string."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


def metrics_row(metrics: Any, i: int) -> dict[str, Any]:
    """The fields of run ``i`` of stacked metrics as Python numbers (booleans stay booleans)."""
    out = {}
    for field, value in vars(metrics).items():
        v = np.asarray(value)[i]
        out[field] = bool(v) if v.dtype == np.bool_ else float(v)
    return out


def group_rows(group: Group, metrics: Any | None, error: str | None, seconds: float, device: str,
               attempt: str) -> list[dict[str, Any]]:
    """One row per run of ``group``: the run's fields, its metrics (or the group's error) and its status."""
    rows = []
    for i, run in enumerate(group.runs):
        row = dict(run)
        row.update(group_id=group.group_id, group_size=group.size, attempt=attempt, device=device,
                   wall_time_s=seconds / group.size)
        if metrics is None:
            row.update(status="failed", error=error)
        else:
            values = metrics_row(metrics, i)
            failed = values.pop("failed", False) or not all(np.isfinite(v) for k, v in values.items()
                                                            if k != "alignment")
            row.update(values)
            row.update(status="failed" if failed else "ok", error="NaN/inf outcome" if failed else None)
        rows.append(row)
    return rows


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to the JSONL file ``path`` in one write, flushed and fsynced."""
    text = "".join(json.dumps(r, default=json_default) + "\n" for r in rows)
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":  # a write cut by a kill: start our rows on a fresh line
                text = "\n" + text
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


#: Keys every stored row has (what resuming reads).
_ROW_KEYS = frozenset({"group_id", "attempt", "group_size"})


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every readable row of the JSONL file ``path`` (a line cut by a kill is skipped)."""
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a write cut by a kill: its group is incomplete and will be re-run
            if isinstance(row, dict) and _ROW_KEYS <= row.keys():
                rows.append(row)  # anything else (a stray line, a row of another tool) is not a run of a group
    return rows


def complete_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per group, the rows of its last complete attempt."""
    by_attempt: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_attempt.setdefault((row["group_id"], row["attempt"]), []).append(row)
    latest: dict[str, list[dict[str, Any]]] = {}
    for (gid, _), group_rows_ in by_attempt.items():
        if len(group_rows_) == group_rows_[0]["group_size"]:
            latest[gid] = group_rows_
    return [r for rows_ in latest.values() for r in rows_]


def finished_groups(path: Path, retry_failed: bool = False) -> set[str]:
    """Ids of the groups with a complete attempt in directory ``path`` (failed ones excluded if ``retry_failed``)."""
    done = complete_rows(read_rows(path / RESULTS_FILE))
    finished = {r["group_id"] for r in done}
    if retry_failed:
        finished -= {r["group_id"] for r in done if r["status"] != "ok"}
    return finished


def load_results(out_dir: str | os.PathLike) -> pd.DataFrame:
    """The finished rows of a sweep directory as a DataFrame (one row per run)."""
    return pd.DataFrame(complete_rows(read_rows(Path(out_dir) / RESULTS_FILE)))


def manifest_of(grid: Grid, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON description of the grid (what identifies a results directory)."""
    runs = grid.runs()
    return dict(targets=[t.label() for t in grid.targets], runs=stable_id(runs), n_runs=len(runs), **(extra or {}))


def check_directory(out_dir: str | os.PathLike, manifest: dict[str, Any], overwrite: bool = False) -> bool:
    """Whether ``out_dir`` holds another sweep's results that ``overwrite`` will replace (reads only).

    Raises:
      ConfigurationMismatch: ``out_dir`` holds another sweep's results and ``overwrite`` is false.
    """
    mfile = Path(out_dir) / MANIFEST_FILE
    if not mfile.exists() or json.loads(mfile.read_text()) == manifest:
        return False
    if not overwrite:
        raise ConfigurationMismatch(
            f"{out_dir} holds results of a different configuration ({MANIFEST_FILE} differs); "
            f"choose another --out or pass --overwrite to replace them")
    return True


def prepare_directory(out_dir: str | os.PathLike, manifest: dict[str, Any], overwrite: bool = False) -> Path:
    """Create ``out_dir`` or check that it holds the same sweep; never silently mixes two sweeps' results."""
    path = Path(out_dir)
    mfile = path / MANIFEST_FILE
    if check_directory(path, manifest, overwrite):
        (path / RESULTS_FILE).unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    mfile.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=json_default))
    return path
