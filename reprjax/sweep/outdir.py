"""Output directories: usable paths, one sweep per directory, and removal of only what reprjax wrote.

A results directory holds one sweep: ``results.jsonl`` and ``sweep.json`` (written by :mod:`reprjax.sweep`) and the
report, tables and figures the command line draws from them, whose names are recorded in :data:`OUTPUTS_FILE`.
Every command that writes checks the path first (:func:`check_usable`), takes the directory's lock
(:func:`lock`: a second reprjax command writing to the same directory is refused rather than interleaved), then
:func:`prepare`: a directory holding another sweep is refused unless ``overwrite``, which removes that sweep's
files -- and only those: a file reprjax did not write survives.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from reprjax import sweep
from reprjax._validate import ConfigError

#: The names of the report, tables and figures a command wrote into the directory (JSON list).
OUTPUTS_FILE = "outputs.json"


def check_usable(path: str | os.PathLike, create: bool = True) -> Path:
    """``path`` is, or can be created as, a writable directory; else a one-line ``ConfigError``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output directory {path} exists and is not a directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"output directory {path} lies under {parent}, which is not a directory")
            break
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ConfigError(f"output directory {path} cannot be written: {err.strerror or err}") from None
    return path


@contextlib.contextmanager
def lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on the directory while a command writes to it (POSIX ``flock``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"another reprjax command is writing to {path}; wait for it or choose another "
                              f"--out") from None
        yield
    finally:
        os.close(fd)


def read_manifest(path: str | os.PathLike) -> dict[str, Any] | None:
    """The sweep manifest of ``path`` (``None`` if there is none); a corrupt one is a ``ConfigError`` naming it."""
    mfile = Path(path) / sweep.MANIFEST_FILE
    if not mfile.exists():
        return None
    try:
        manifest = json.loads(mfile.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{mfile} is corrupt ({type(err).__name__}: {err}); pass --overwrite to replace the "
                          f"sweep it belonged to") from None
    if not isinstance(manifest, dict):
        raise ConfigError(f"{mfile} is corrupt (not a JSON object); pass --overwrite to replace it")
    return manifest


def prepare(path: str | os.PathLike, identity: Mapping[str, Any], overwrite: bool = False) -> Path:
    """Check that ``path`` holds no sweep, or the sweep ``identity`` describes (a subset of its manifest).

    A different sweep (or results without a manifest, or a corrupt manifest) is refused with a ``ConfigError``;
    with ``overwrite`` its outputs are removed first (:func:`remove_outputs`).
    """
    path = check_usable(path)
    try:
        manifest = read_manifest(path)
        foreign = manifest is None and (path / sweep.RESULTS_FILE).exists()
        same = manifest is not None and all(manifest.get(k) == v for k, v in identity.items())
    except ConfigError:
        if not overwrite:
            raise
        manifest, foreign, same = None, True, False
    if manifest is None and not foreign:
        return path
    if same:
        return path
    if not overwrite:
        what = (f"results without a {sweep.MANIFEST_FILE}" if foreign else
                f"results of a different configuration ({manifest.get('experiment', 'unknown experiment')})")
        raise ConfigError(f"{path} holds {what} ({sweep.MANIFEST_FILE} differs); choose another --out or pass "
                          f"--overwrite to replace them")
    remove_outputs(path)
    return path


def _recorded(path: Path) -> list[str]:
    try:
        names = json.loads((path / OUTPUTS_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _unlink_own(path: Path, names: Iterable[str]) -> None:
    for name in names:
        if not name or Path(name).name != name:  # only plain names directly inside the directory
            continue
        target = path / name
        if target.is_file() and not target.is_symlink():
            target.unlink()


def remove_outputs(path: str | os.PathLike) -> None:
    """Remove the previous sweep's files from ``path``: results, manifest and the recorded report, tables and
    figures.  Nothing else is touched."""
    path = Path(path)
    _unlink_own(path, [*_recorded(path), sweep.RESULTS_FILE, sweep.MANIFEST_FILE, OUTPUTS_FILE])


def record_outputs(path: str | os.PathLike, files: Iterable[str | os.PathLike]) -> None:
    """Record the report, tables and figures just written (names inside ``path``); files recorded by an earlier
    command and not written again are stale and removed."""
    path = Path(path)
    names = []
    for f in files:
        f = Path(f)
        if f.parent.resolve() == path.resolve() and f.name not in names:
            names.append(f.name)
    stale = [n for n in _recorded(path) if n not in names and n not in (sweep.RESULTS_FILE, sweep.MANIFEST_FILE)]
    _unlink_own(path, stale)
    (path / OUTPUTS_FILE).write_text(json.dumps(names, indent=1) + "\n")
