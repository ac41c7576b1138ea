"""Output directories: usable paths, one sweep per directory, and removal of only what reprjax wrote.

A results directory holds one sweep: ``results.jsonl`` and ``sweep.json`` (written by :mod:`reprjax.sweep`) and the
report, tables and figures the command line draws from them, each recorded in :data:`OUTPUTS_FILE` with the SHA-256
of what was written.  A directory is reprjax's only if reprjax made it: the manifest is its first file and its last
to go, and an existing directory that holds anything but no manifest is refused whatever the flags
(:func:`prepare`).  Every command that writes checks the path first (:func:`check_usable`), takes the directory's
lock (:func:`lock`: a second reprjax command writing to the same directory is refused rather than interleaved), then
:func:`prepare`: a directory holding another sweep is refused unless ``overwrite``, which removes that sweep's
files -- and only those.  Reports, tables and figures are drawn into a staging folder and moved into place by
:func:`publish`, which refuses to replace a file reprjax did not write (or one changed since it wrote it): a file
reprjax did not write is never overwritten, claimed or removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from reprjax import sweep
from reprjax._validate import ConfigError
from reprjax.sweep.store import write_atomic

#: The report, tables and figures a command wrote into the directory (JSON object: name -> SHA-256 digests of the
#: contents reprjax wrote under that name).
OUTPUTS_FILE = "outputs.json"
#: Prefix of the staging folders :func:`publish` draws into (removed when it returns).
STAGING_PREFIX = ".reprjax-staging-"


def check_usable(path: str | os.PathLike, create: bool = True) -> Path:
    """``path`` is, or can be created as, a writable directory; else a one-line ``ConfigError``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output directory {path} exists and is not a directory")
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"output directory {path} is a link to {os.readlink(path)}, which does not exist")
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


#: What a corrupt manifest leaves a user (``run``, ``plot`` and ``report`` all read it first).
_CORRUPT_REMEDY = ("its sweep's results cannot be read or resumed; `reprjax run ... --overwrite` with this --out "
                   "replaces that sweep")


def read_manifest(path: str | os.PathLike) -> dict[str, Any] | None:
    """The sweep manifest of ``path`` (``None`` if there is none); a corrupt one is a ``ConfigError`` naming it."""
    mfile = Path(path) / sweep.MANIFEST_FILE
    if not mfile.exists():
        return None
    try:
        manifest = json.loads(mfile.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{mfile} is corrupt ({type(err).__name__}: {err}); {_CORRUPT_REMEDY}") from None
    if not isinstance(manifest, dict):
        raise ConfigError(f"{mfile} is corrupt (not a JSON object); {_CORRUPT_REMEDY}")
    return manifest


def prepare(path: str | os.PathLike, identity: Mapping[str, Any], overwrite: bool = False) -> Path:
    """Check that ``path`` is new or empty, or holds the sweep ``identity`` describes (a subset of its manifest).

    A directory that holds files but no manifest was not made by reprjax: it is refused whatever ``overwrite``
    says, naming what it holds.  A different sweep (or a corrupt manifest) is refused with a ``ConfigError``; with
    ``overwrite`` its outputs are removed first (:func:`remove_outputs`).
    """
    path = check_usable(path)
    mfile = path / sweep.MANIFEST_FILE
    if mfile.is_symlink() or (mfile.exists() and not mfile.is_file()):
        raise ConfigError(f"{mfile} is not a plain file, so reprjax did not write it; choose another --out")
    try:
        manifest = read_manifest(path)
    except ConfigError:
        if not overwrite:
            raise
        remove_outputs(path)
        return path
    if manifest is None:
        entries = sorted(p.name for p in path.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
            what = (f"{sweep.RESULTS_FILE} without a {sweep.MANIFEST_FILE}" if sweep.RESULTS_FILE in entries else
                    "files")
            raise ConfigError(f"{path} holds {what} ({shown}) that reprjax did not write; choose a new or empty "
                              f"directory for --out (nothing there is replaced, whatever the flags)")
        return path
    if all(manifest.get(k) == v for k, v in identity.items()):
        return path
    if not overwrite:
        raise ConfigError(f"{path} holds results of a different configuration "
                          f"({manifest.get('experiment', 'unknown experiment')}; {sweep.MANIFEST_FILE} differs); "
                          f"choose another --out or pass --overwrite to replace them")
    remove_outputs(path)
    return path


def digest(path: Path) -> str:
    """SHA-256 of a file's contents (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _recorded(path: Path) -> dict[str, list[str] | None]:
    """name -> the digests reprjax wrote under it (``None``: recorded by an older reprjax, without digests)."""
    try:
        data = json.loads((path / OUTPUTS_FILE).read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if isinstance(data, list):  # the older format: a list of names
        return {n: None for n in data if isinstance(n, str)}
    if not isinstance(data, dict):
        return {}
    return {n: [h for h in v if isinstance(h, str)] for n, v in data.items() if isinstance(n, str) and
            isinstance(v, list)}


def _plain_name(name: str) -> bool:
    return bool(name) and Path(name).name == name and name not in (".", "..")


def _own(path: Path, name: str, recorded: Mapping[str, list[str] | None]) -> bool:
    """Whether ``path / name`` is a plain file reprjax wrote (recorded with its digest, and unchanged since)."""
    target = path / name
    if name not in recorded or not _plain_name(name) or target.is_symlink() or not target.is_file():
        return False
    digests = recorded[name]
    # a name recorded by an older reprjax without digests cannot be checked: the user may have replaced the file since,
    # so it is never claimed (publish refuses the name in one line; the user moves it away)
    return digests is not None and digest(target) in digests


def _unlink_own(path: Path, names: Iterable[str], recorded: Mapping[str, list[str] | None]) -> None:
    for name in names:
        if _own(path, name, recorded):
            (path / name).unlink()


def _unlink_plain(path: Path, name: str) -> None:
    target = path / name
    if target.is_file() and not target.is_symlink():
        target.unlink()


def remove_outputs(path: str | os.PathLike) -> None:
    """Remove the previous sweep's files from ``path``: the recorded report, tables and figures that are unchanged
    since reprjax wrote them, the results, the record and last the manifest.  Nothing else is touched."""
    path = Path(path)
    recorded = _recorded(path)
    _unlink_own(path, recorded, recorded)
    for name in (sweep.RESULTS_FILE, OUTPUTS_FILE, sweep.MANIFEST_FILE):  # the manifest goes last: see the module
        _unlink_plain(path, name)


def _write_record(path: Path, record: Mapping[str, list[str]]) -> None:
    write_atomic(path / OUTPUTS_FILE, json.dumps(dict(record), indent=1) + "\n")


def publish(path: str | os.PathLike, draw: Callable[[Path], Iterable[str | os.PathLike]]) -> list[Path]:
    """Draw outputs into a staging folder inside ``path`` and move them into place, recording each.

    ``draw(folder)`` writes the report, tables and figures into ``folder`` and returns the files it wrote.  Before
    anything moves, every name is checked: a file of that name that reprjax did not write (or that changed since
    it wrote it, or a link) is refused with one line naming it.  Staging folders left by a command killed while it
    drew are removed first (call it under :func:`lock`).  The record lists the old and new digests while the
    files move (a command killed meanwhile leaves every file claimable), then only the new ones; outputs recorded
    before and not drawn again are removed if unchanged.

    Returns:
      The files in ``path``, in the order ``draw`` returned them.

    Raises:
      ConfigError: a name ``draw`` wrote is taken by a file reprjax did not write.
    """
    path = Path(path)
    for left in path.glob(STAGING_PREFIX + "*"):  # a staging folder of a command killed while it drew (ours)
        if left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=path))
    try:
        names: list[str] = []
        for f in draw(stage):
            f = Path(f)
            if f.parent.resolve() == stage.resolve() and f.is_file() and f.name not in names:
                names.append(f.name)
        recorded = _recorded(path)
        for name in names:
            target = path / name
            taken = target.exists() or target.is_symlink()
            if name in (sweep.RESULTS_FILE, sweep.MANIFEST_FILE, OUTPUTS_FILE) or (
                    taken and not _own(path, name, recorded)):
                raise ConfigError(f"{target} exists and reprjax did not write it (or it changed since); move it "
                                  f"away and run `reprjax plot {path}` to draw the report (the results are kept)")
        new = {name: [digest(stage / name)] for name in names}
        during = {n: sorted(set(recorded.get(n) or []) | set(new.get(n, []))) for n in {*recorded, *new}}
        _write_record(path, during)
        for name in names:
            os.replace(stage / name, path / name)
        _unlink_own(path, [n for n in recorded if n not in new], recorded)
        _write_record(path, new)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [path / name for name in names]


def record_outputs(path: str | os.PathLike, files: Iterable[str | os.PathLike]) -> None:
    """Record files already written into ``path`` as reprjax's (with their digests); outputs recorded by an earlier
    command and not written again are stale and removed if unchanged.  Prefer :func:`publish`, which also checks
    that no name is taken by a file reprjax did not write."""
    path = Path(path)
    names = []
    for f in files:
        f = Path(f)
        if f.parent.resolve() == path.resolve() and f.name not in names and f.is_file():
            names.append(f.name)
    recorded = _recorded(path)
    _unlink_own(path, [n for n in recorded if n not in names and n not in (sweep.RESULTS_FILE, sweep.MANIFEST_FILE)],
                recorded)
    _write_record(path, {name: [digest(path / name)] for name in names})
