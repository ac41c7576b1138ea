"""What every experiment shares: a frozen config checked at a typed boundary, and the run loop around the sweep.

The boundary: :func:`config_from_dict` checks every TOML value (and command-line override) against the config
field's declared type (:func:`reprjax._validate.check_type`: booleans are booleans, lists are lists, integers are
integers) and then its range (the config's ``__post_init__``), before anything runs; a problem is one
:class:`~reprjax._validate.ConfigError` naming the source, the key, what was expected and what was given.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from reprjax import sweep
from reprjax.sweep import outdir
from reprjax._validate import ConfigError, check_fields, check_type
from reprjax.methods.registry import METHODS
from reprjax.problem.data import MAX_ROW_WIDTH
from reprjax.methods.registry import load_plugins as load_plugins_into_registry

__all__ = ["ConfigError", "check_fields", "config_from_dict", "load_plugins", "load_toml", "run_experiment"]


def config_from_dict(cls: type, values: Mapping[str, Any], source: str = "config",
                     origins: Mapping[str, str] | None = None) -> Any:
    """Build the frozen config ``cls`` from a dict (TOML, a manifest, command-line options), checked first.

    Args:
      cls: an experiment's ``Config`` dataclass.
      values: field name -> value (TOML types: lists, strings, numbers, booleans).
      source: where the values came from (a file name), named in every error.
      origins: per key, a better name for where that value came from (e.g. ``{"seeds": "--seeds"}``).

    Raises:
      ConfigError: an unknown key, a value of the wrong type or out of its range (one line, naming the source).
    """
    origins = origins or {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} for {cls.__module__.rsplit('.', 1)[-1]}; allowed: "
                          f"{sorted(fields)}")
    hints = typing.get_type_hints(cls)
    checked = {}
    for key, value in values.items():
        where = origins.get(key, f"{source}: key {key!r}")
        try:
            checked[key] = check_type(key, value, hints[key])
        except ConfigError as err:
            raise ConfigError(f"{where}: {str(err).split(': ', 1)[1]}") from None
    try:
        return cls(**checked)
    except ValueError as err:  # the config's range checks name the key first
        text = str(err)
        where = next((w for k, w in origins.items() if text.startswith((f"{k} ", f"{k}:"))), source)
        raise ConfigError(f"{where}: {text}") from None


def load_plugins(modules: Any, source: str = "config", directory: str | Path | None = None) -> list[str]:
    """Import a config's ``plugins = [...]``: modules that register their own methods
    (:func:`reprjax.methods.registry.register`, docs/adding_a_method.md); returns the method names they added.

    Args:
      modules: module names, importable from ``sys.path`` or from ``directory`` (the config file's folder).
      source: where the list came from, named in errors.
      directory: a folder searched first while importing (``None``: ``sys.path`` only).

    Raises:
      ConfigError: ``plugins`` is not a list of module names, or a module cannot be imported (naming the source).
    """
    if not isinstance(modules, list) or not all(isinstance(m, str) and m for m in modules):
        raise ConfigError(f"{source}: key 'plugins' must be a list of importable module names, got {modules!r}")
    extra = [str(Path(directory).resolve())] if directory is not None else []
    sys.path[:0] = extra
    try:
        return load_plugins_into_registry(modules)
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None
    finally:
        for path in extra:
            sys.path.remove(path)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a malformed or unreadable file raises ``ConfigError`` naming the file and the problem."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"malformed TOML in {path}: {err}") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None


def config_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def check_positive_ints(name: str, values: tuple[Any, ...], low: int = 1) -> None:
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in values):
        raise ValueError(f"{name} must be a non-empty list of integers >= {low}, got {list(values)}")


def check_ints(config: Any, low: int = 1, **lows: int) -> None:
    """Every integer field of ``config`` (and every item of an integer-list field) must be ``>= low`` (or the
    per-field ``lows[name]``): in the experiment configs every integer is a count or a size."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        items = value if isinstance(value, tuple) else (value,)
        if items and all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            floor = lows.get(field.name, low)
            bad = [v for v in items if v < floor]
            if bad:
                raise ValueError(f"{field.name} must be {'integers' if isinstance(value, tuple) else 'an integer'} "
                                 f">= {floor}, got {value!r}")


def check_positive_numbers(name: str, values: tuple[float, ...]) -> None:
    if any(v <= 0 for v in values):
        raise ValueError(f"{name} must be a non-empty list of positive numbers, got {list(values)}")


def check_single_task_methods(methods: tuple[str, ...]) -> None:
    """``methods`` must be a non-empty list of registered methods scored on one target (not the transfer head,
    which needs a (source, target) pair: :attr:`reprjax.methods.registry.Method.needs_pair`)."""
    allowed = sorted(m for m, method in METHODS.items() if not method.needs_pair)
    if not methods or any(m not in allowed for m in methods):
        raise ValueError(f"methods must be a non-empty subset of {allowed}, got {list(methods)}")


def check_seeds(seeds: Any) -> None:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")


def check_r_d(r: int, dims: tuple[int, ...]) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r must be an integer >= 1, got {r!r}")
    too_small = [d for d in dims if d < r]
    if too_small:
        raise ValueError(f"r = {r} exceeds d for dims {too_small}: r must be in [1, d]")


def n_grid(d: int, multiples: tuple[float, ...], power: float = 2.0, n_min: int = 16) -> list[int]:
    """Sample counts ``max(n_min, round(c * d^power))`` for each multiple ``c``.

    Raises:
      ValueError: two multiples give the same ``n`` at ``d`` (the grid would hold fewer sample counts than the
        config names, one point standing for several); the message names them.
    """
    counts = {c: max(n_min, int(round(c * d**power))) for c in multiples}
    by_n: dict[int, list[float]] = {}
    for c, n in counts.items():
        by_n.setdefault(n, []).append(c)
    merged = {n: cs for n, cs in by_n.items() if len(cs) > 1}
    if merged:
        n, cs = min(merged.items())
        raise ValueError(f"the multiples {cs} all give n = {n} at d = {d} (n = max({n_min}, round(c d^{power:g}))): "
                         f"{len(multiples)} multiples make {len(by_n)} sample counts; choose multiples that differ at "
                         f"every d")
    return sorted(by_n)


#: Most runs one sweep may hold (a guard against e.g. ``seeds = 10**9``, which would never finish building).
MAX_RUNS = 10**6
#: Largest sample count (row indices are int32).
MAX_SAMPLES = 2**31 - 1
#: Largest ``d``: every input row is drawn by :func:`reprjax.problem.data.normal_rows`, which takes rows of at most
#: this width.
MAX_DIM = MAX_ROW_WIDTH


def check_grid(grid: sweep.Grid, mask_samples: bool = False) -> None:
    """Everything the sweep would reject, now (before a directory is touched), as ``ConfigError``.

    Seeds >= 1, distinct dims of at most :data:`MAX_DIM`, sample counts that do not collapse, per-method sample
    caps and extra hyper-parameters only for methods of the grid, every run's method config constructible (stage
    sizes, strengths, counts) and every target buildable.  Any exception a config raises here is one line.
    """
    if isinstance(grid.seeds, bool) or not isinstance(grid.seeds, int) or grid.seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1, got {grid.seeds!r}")
    if len(set(grid.dims)) != len(grid.dims):
        raise ConfigError(f"dims must be distinct, got {list(grid.dims)}")
    too_wide = [d for d in grid.all_dims if isinstance(d, int) and d > MAX_DIM]
    if too_wide:
        raise ConfigError(f"dims {too_wide} exceed {MAX_DIM:,}, the widest input row reprjax draws "
                          f"(reprjax.problem.data.MAX_ROW_WIDTH)")
    for what, entries in (("sample cap", grid.method_n_max), ("hyper-parameters", grid.method_hyper)):
        unknown = sorted({m for m, _ in entries} - set(grid.methods))
        if unknown:
            raise ConfigError(f"a {what} is given for method(s) {unknown} that the grid does not run "
                              f"({list(grid.methods)})")
    try:
        sizes = {d: list(grid.n(d) if callable(grid.n) else grid.n) for d in grid.all_dims}
        runs = (len(grid.methods) * len(grid.targets) * sum(map(len, sizes.values())) * len(grid.widths) *
                math.prod(len(v) for _, v in grid.hyper) * grid.seeds)
        if runs > MAX_RUNS:
            raise ConfigError(f"the grid holds about {runs:,} runs, more than MAX_RUNS = {MAX_RUNS:,}: fewer seeds, "
                              f"dims or sample counts")
        too_big = sorted({n for ns in sizes.values() for n in ns if n > MAX_SAMPLES})
        if too_big:
            raise ConfigError(f"sample counts {too_big[:3]} exceed {MAX_SAMPLES:,} (int32 row indices): lower "
                              f"n_over_d2 or N")
        groups = sweep.make_groups(grid, mask_samples)
        for target, d in sorted({(g.target, g.d) for g in groups}, key=lambda td: (td[0].label(), td[1])):
            target.check(d)
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever a config raises is one line, before anything is written
        text = " ".join(str(err).split())
        if not isinstance(err, ValueError) or not text:
            text = f"{type(err).__name__}: {text}".rstrip(": ")
        raise ConfigError(f"the grid cannot run: {text}") from None
    if not groups:
        raise ConfigError("the grid holds no runs (every sample count is above its method's cap?)")


def checked_grid(module: Any, config: Any, mask_samples: bool | None = None) -> sweep.Grid:
    """The study's grid for ``config``, checked by :func:`check_grid`: whatever building it raises is one
    ``ConfigError`` line, before any directory is touched."""
    try:
        grid = module.grid(config)
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - one line at the boundary
        raise ConfigError(f"the grid cannot be built: {type(err).__name__}: {' '.join(str(err).split())}") from None
    check_grid(grid, getattr(config, "mask_samples", False) if mask_samples is None else mask_samples)
    return grid


def load_study_results(module: Any, config: Any, out_dir: str | Path) -> pd.DataFrame:
    """The finished rows of the study's directory that are runs of its grid (:func:`reprjax.sweep.load_results`
    with the grid's groups, masked or not); what could not be used is in ``df.attrs["store_problems"]``."""
    grid = module.grid(config)
    groups = {g.group_id: g.runs for mask in (False, True) for g in sweep.make_groups(grid, mask)}
    df = sweep.load_results(out_dir, groups)
    outside = getattr(module, "rows_outside_sweep", None)  # runs a study makes itself (e.g. transfer's heads)
    return df if outside is None else outside(config, out_dir, df)


def run_experiment(module: Any, config: Any, out_dir: str | Path, execution: str = "auto", progress: bool = True,
                   overwrite: bool = False, mask_samples: bool | None = None,
                   retry_failed: bool = False, plugins: dict[str, Any] | None = None
                   ) -> tuple[pd.DataFrame, sweep.SweepReport]:
    """Run the experiment's sweep into ``out_dir`` (resuming), return its results table and the sweep report.

    ``plugins`` (``{"modules": [...], "directory": ...}``, the config's ``plugins`` list) is kept in the manifest, so
    that ``reprjax plot`` can load the same user methods again.

    The grid is checked first; then ``out_dir`` must be usable and hold this same sweep, or none, unless
    ``overwrite`` (which removes the previous sweep's outputs: :func:`reprjax.sweep.outdir.remove_outputs`).
    Call it inside :func:`reprjax.sweep.outdir.lock` to keep other reprjax commands out of the directory.
    """
    mask = getattr(config, "mask_samples", False) if mask_samples is None else mask_samples
    grid = checked_grid(module, config, mask)
    extra = dict(experiment=module.NAME, config=config_dict(config), **({"plugins": plugins} if plugins else {}))
    outdir.prepare(out_dir, extra, overwrite)
    kwargs = dict(execution=execution, mask_samples=mask, progress=progress, manifest_extra=extra,
                  retry_failed=retry_failed)
    try:
        report = sweep.run_sweep(grid, out_dir, overwrite=False, **kwargs)
    except ValueError as err:
        if type(err).__name__ != "ConfigurationMismatch":
            raise
        if not overwrite:
            raise ConfigError(str(err)) from None
        outdir.remove_outputs(out_dir)  # same experiment and config, another grid (e.g. a newer reprjax)
        report = sweep.run_sweep(grid, out_dir, overwrite=False, **kwargs)
    outside = getattr(module, "run_outside_sweep", None)  # runs sharing work the sweep cannot share (resumable)
    if outside is not None:
        outside(config, out_dir, progress)
    return load_study_results(module, config, out_dir), report

