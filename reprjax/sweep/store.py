"""The store of a sweep: one JSON row per run in ``results.jsonl``, the manifest ``sweep.json``, and resuming.

Each finished group's rows are appended in one write, flushed and fsynced: a sweep killed (even by SIGKILL) loses
at most the group in flight, and re-running the same grid skips the groups already on disk.  A group that raised
is recorded as failed rows carrying the error; runs whose outcome is NaN/inf are rows with ``status = "failed"``.
The manifest describes the grid, so a directory is never silently shared by two different sweeps; it is written
atomically (a new file renamed over the old), so reprjax never leaves a torn one.

A row is a JSON object: the run's fields (``method``, ``target``, ``d``, ``n``, ``width``, ``seed``, its
hyper-parameters), the bookkeeping (``group_id``, ``group_size``, ``attempt``, ``device``, ``wall_time_s``,
``status``, ``error``) and the method's outcomes.  A scalar outcome is a JSON number (booleans stay booleans;
NaN/inf as JSON's ``NaN``/``Infinity``); an outcome that is an array (e.g. an overlap trajectory, ``traj_*``) is a
JSON list, nested for more than one axis.  :func:`load_results` reads such a field back as a Python list per row (an
object column): ``np.asarray(row["traj_best_cosine"])`` is the ``(K, r)`` array again.

Reading never dies on a damaged file (:func:`read_store`): a line that is not UTF-8, not JSON or not a row is
skipped, a row whose fields have the wrong type (a bookkeeping field, an outcome of
:class:`reprjax.methods.contract.Metrics` that is not a number, or any field whose kind differs from the kind it has
in most rows) is skipped, and a row whose ``group_size`` disagrees with the rest of its group is kept when the group
is otherwise complete; each is a line of :attr:`StoreContents.problems`, which the command line prints.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reprjax._errors import ConfigError
from reprjax.methods.contract import Metrics
from reprjax.sweep.grid import Grid, Group, stable_id

RESULTS_FILE = "results.jsonl"
MANIFEST_FILE = "sweep.json"
STATUSES = ("ok", "failed")


class ConfigurationMismatch(ValueError):
    """The output directory holds results of a different sweep."""


def json_default(obj: Any) -> Any:
    """JSON for numpy scalars and arrays and tuples; anything else as its string."""
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, (tuple, np.ndarray)):
        return list(obj) if isinstance(obj, tuple) else obj.tolist()
    return str(obj)


def metrics_row(metrics: Any, i: int) -> dict[str, Any]:
    """The fields of run ``i`` of stacked metrics: scalars as Python numbers (booleans stay booleans), arrays (an
    overlap trajectory) as (nested) lists of them; fields that are ``None`` (not recorded) are left out."""
    out = {}
    for field, value in vars(metrics).items():
        if value is None:
            continue
        v = np.asarray(value)[i]
        if v.ndim:
            out[field] = v.tolist()
        else:
            out[field] = bool(v) if v.dtype == np.bool_ else float(v)
    return out


def _finite(value: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(value, dtype=float))))


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
            failed = values.pop("failed", False) or not all(_finite(v) for k, v in values.items()
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


# ------------------------------------------------------------------------------------------------ reading
#: Keys every stored row has (what resuming reads).
_ROW_KEYS = frozenset({"group_id", "attempt", "group_size"})
#: Outcomes every method returns (:class:`reprjax.methods.contract.Metrics`): numbers (or null) in every row.
_NUMBER_FIELDS = tuple(f.name for f in dataclasses.fields(Metrics) if f.name != "failed") + ("wall_time_s",)


def _is_int(v: Any, low: int) -> bool:
    return type(v) is int and v >= low


def _is_number(v: Any) -> bool:
    return v is None or type(v) in (int, float)


#: The fields the store writes itself: name -> (what the value must be, the check).
_SCHEMA: dict[str, tuple[str, Any]] = {
    "group_id": ("a non-empty string", lambda v: isinstance(v, str) and v != ""),
    "attempt": ("a non-empty string", lambda v: isinstance(v, str) and v != ""),
    "group_size": ("an integer >= 1", lambda v: _is_int(v, 1)),
    "status": (f"one of {list(STATUSES)}", lambda v: v in STATUSES),
    "method": ("a string", lambda v: isinstance(v, str)),
    "target": ("a string", lambda v: isinstance(v, str)),
    "device": ("a string", lambda v: isinstance(v, str)),
    "error": ("a string or null", lambda v: v is None or isinstance(v, str)),
    **{k: ("an integer >= 1", lambda v: _is_int(v, 1)) for k in ("d", "n", "width")},
    "seed": ("an integer >= 0", lambda v: _is_int(v, 0)),
    **{k: ("a number or null", _is_number) for k in _NUMBER_FIELDS},
}


def _kind(v: Any) -> str:
    kinds = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string", list: "list"}
    return kinds.get(type(v), "object")


def _short(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclasses.dataclass(frozen=True)
class StoreContents:
    """What :func:`read_store` read.

    Attributes:
      rows: every readable, well-typed row, in file order, each as ``(line number, row)``.
      problems: one line per line skipped (not UTF-8, not JSON, not a row, a field of the wrong type).
    """

    rows: list[tuple[int, dict[str, Any]]]
    problems: list[str]


def read_store(path: Path, run_fields: Iterable[str] = ()) -> StoreContents:
    """Every readable, well-typed row of the JSONL file ``path``, and a line naming each line it could not use.

    ``run_fields`` (the keys of the grid's runs, when known) are left out of the rule that a field keeps one kind
    across rows: the grid may mix kinds there (e.g. ``"auto"`` or a number), and they are checked against it.

    Raises:
      ConfigError: the file exists but cannot be read (permissions, a directory).
    """
    path = Path(path)
    if not path.exists():
        return StoreContents([], [])
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path} cannot be read: {err.strerror or err}") from None
    problems: list[str] = []
    candidates = []
    exempt = set(run_fields)
    for no, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as err:
            problems.append(f"line {no}: not UTF-8 (byte 0x{line[err.start]:02x} at column {err.start + 1})")
            continue
        except (ValueError, RecursionError):
            problems.append(f"line {no}: not a whole JSON row (a write cut by a kill, or an edit)")
            continue
        if not isinstance(row, dict) or not _ROW_KEYS <= row.keys():
            problems.append(f"line {no}: not a row of a sweep (no group_id, attempt and group_size)")
            continue
        bad = next((f"{k} = {_short(row[k])} is not {what}" for k, (what, ok) in _SCHEMA.items()
                    if k in row and not ok(row[k])), None)
        if bad:
            problems.append(f"line {no}: {bad}")
            continue
        candidates.append((no, row))
    kinds: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for _, row in candidates:
        for k, v in row.items():
            if k not in _SCHEMA and k not in exempt and v is not None:
                kinds[k][_kind(v)] += 1
    usual = {k: c.most_common(1)[0][0] for k, c in kinds.items()}
    rows = []
    for no, row in candidates:
        odd = next((k for k, v in row.items() if k in usual and v is not None and _kind(v) != usual[k]), None)
        if odd is not None:
            problems.append(f"line {no}: {odd} = {_short(row[odd])} is a {_kind(row[odd])} where the other rows "
                            f"hold a {usual[odd]}")
            continue
        rows.append((no, row))
    return StoreContents(rows, problems)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every readable, well-typed row of the JSONL file ``path`` (what :func:`read_store` could not use is
    skipped)."""
    return [row for _, row in read_store(path).rows]


def _of_grid(numbered: Iterable[tuple[int, dict[str, Any]]], groups: Mapping[str, Sequence[Mapping[str, Any]]]
             ) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """The rows whose group is a group of the grid and whose run fields are a run of that group."""
    runs = {gid: {json.dumps(r, sort_keys=True, default=json_default) for r in rs} for gid, rs in groups.items()}
    fields = {gid: sorted({k for r in rs for k in r}) for gid, rs in groups.items()}
    kept, problems = [], []
    for no, row in numbered:
        gid = row["group_id"]
        if gid not in runs:
            problems.append(f"line {no}: group_id {_short(gid)} is not a group of this sweep's grid; skipped")
            continue
        projection = json.dumps({k: row.get(k) for k in fields[gid] if k in row}, sort_keys=True,
                                default=json_default)
        if projection not in runs[gid]:
            problems.append(f"line {no}: its run fields (method, target, d, n, ...) are not a run of group {gid}; "
                            f"skipped")
            continue
        kept.append((no, row))
    return kept, problems


def _complete(numbered: Iterable[tuple[int, dict[str, Any]]], sizes: Mapping[str, int] | None = None
              ) -> tuple[list[dict[str, Any]], list[str]]:
    """Per group, the rows of its last complete attempt, and a line for each row or group that was not used or
    disagrees with its group.  A group's size is ``sizes[group_id]`` when given (the grid's), else the
    ``group_size`` most of its rows hold."""
    by_attempt: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for no, row in numbered:
        by_attempt.setdefault((row["group_id"], row["attempt"]), []).append((no, row))
    problems: list[str] = []
    latest: dict[str, list[dict[str, Any]]] = {}
    partial: dict[str, str] = {}
    for (gid, attempt), members in by_attempt.items():
        seen, unique = set(), []
        for no, row in members:
            text = json.dumps(row, sort_keys=True, default=str)
            if text in seen:
                problems.append(f"line {no}: a copy of an earlier row of group {gid}; skipped")
                continue
            seen.add(text)
            unique.append((no, row))
        if sizes is not None and gid in sizes:
            size = sizes[gid]
        else:
            counts = collections.Counter(row["group_size"] for _, row in unique)
            tied = sorted(s for s, c in counts.items() if c == max(counts.values()))
            size = len(unique) if len(unique) in tied else tied[-1]
        complete = len(unique) == size
        for no, row in unique:
            if row["group_size"] != size:
                problems.append(f"line {no}: group_size {row['group_size']} disagrees with the size {size} of its "
                                f"group {gid}" + ("; the row is kept" if complete else ""))
        if complete:
            latest[gid] = [row for _, row in unique]
        else:
            partial[gid] = (f"group {gid}: {len(unique)} readable row(s) of attempt {attempt} where it has {size} "
                            f"runs; not used (`reprjax run` runs the group again)")
    problems += [text for gid, text in partial.items() if gid not in latest]
    return [r for rows_ in latest.values() for r in rows_], problems


def complete_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per group, the rows of its last complete attempt."""
    return _complete((0, r) for r in rows)[0]


def finished_groups(path: Path, retry_failed: bool = False) -> set[str]:
    """Ids of the groups with a complete attempt in directory ``path`` (failed ones excluded if ``retry_failed``)."""
    done = _complete(read_store(path / RESULTS_FILE).rows)[0]
    finished = {r["group_id"] for r in done}
    if retry_failed:
        finished -= {r["group_id"] for r in done if r["status"] != "ok"}
    return finished


def read_results(out_dir: str | os.PathLike, groups: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
                 ) -> tuple[pd.DataFrame, list[str]]:
    """The finished rows of a sweep directory as a DataFrame (one row per run), and a line per line of
    ``results.jsonl`` that was skipped and per group that was not used or holds an inconsistent row.

    Args:
      out_dir: the sweep directory.
      groups: the grid's groups (``group_id -> its runs``, as :class:`~reprjax.sweep.grid.Group` holds them), if
        known: a row of no group of the grid, or whose run fields are no run of its group, is skipped, and a
        group's size is the grid's.
    """
    run_fields = {k for runs in (groups or {}).values() for r in runs for k in r}
    contents = read_store(Path(out_dir) / RESULTS_FILE, run_fields)
    numbered, problems = contents.rows, list(contents.problems)
    if groups is not None:
        numbered, more = _of_grid(numbered, groups)
        problems += more
    rows, more = _complete(numbered, {g: len(r) for g, r in groups.items()} if groups is not None else None)
    return pd.DataFrame(rows), problems + more


def load_results(out_dir: str | os.PathLike, groups: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
                 ) -> pd.DataFrame:
    """The finished rows of a sweep directory as a DataFrame (one row per run); what could not be used is listed in
    ``df.attrs["store_problems"]`` (:func:`read_results`, which says what ``groups`` does)."""
    df, problems = read_results(out_dir, groups)
    df.attrs["store_problems"] = problems
    return df


def problem_lines(problems: Sequence[str], limit: int = 10) -> list[str]:
    """Report lines for what :func:`read_results` could not use: a count, then the first ``limit`` problems."""
    if not problems:
        return []
    lines = [f"{RESULTS_FILE}: {len(problems)} line(s) or group(s) not used as written (left in the file):"]
    lines += [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return lines


# ------------------------------------------------------------------------------------------------ manifest
def manifest_of(grid: Grid, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON description of the grid (what identifies a results directory)."""
    runs = grid.runs()
    return dict(targets=[t.label() for t in grid.targets], runs=stable_id(runs), n_runs=len(runs), **(extra or {}))


def _read_manifest(mfile: Path) -> Any:
    try:
        return json.loads(mfile.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # unreadable or corrupt: not this sweep's


def check_directory(out_dir: str | os.PathLike, manifest: dict[str, Any], overwrite: bool = False) -> bool:
    """Whether ``out_dir`` holds another sweep's results that ``overwrite`` will replace (reads only).

    Raises:
      ConfigurationMismatch: ``out_dir`` holds another sweep's results (or a corrupt manifest) and ``overwrite`` is
        false.
    """
    mfile = Path(out_dir) / MANIFEST_FILE
    if not mfile.exists() or _read_manifest(mfile) == json.loads(json.dumps(manifest, default=json_default)):
        return False
    if not overwrite:
        raise ConfigurationMismatch(
            f"{out_dir} holds results of a different configuration ({MANIFEST_FILE} differs); "
            f"choose another --out or pass --overwrite to replace them")
    return True


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed over it (never a torn file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_directory(out_dir: str | os.PathLike, manifest: dict[str, Any], overwrite: bool = False) -> Path:
    """Create ``out_dir`` or check that it holds the same sweep; never silently mixes two sweeps' results."""
    path = Path(out_dir)
    mfile = path / MANIFEST_FILE
    if check_directory(path, manifest, overwrite):
        (path / RESULTS_FILE).unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    write_atomic(mfile, json.dumps(manifest, indent=2, sort_keys=True, default=json_default))
    return path
