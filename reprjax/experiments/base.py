"""What every experiment shares: a frozen, validated config read from TOML, and the run loop around the sweep."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from reprjax import sweep


def _coerce(value: Any) -> Any:
    return tuple(_coerce(v) for v in value) if isinstance(value, list) else value


def config_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build the frozen config ``cls`` from a dict (TOML), rejecting unknown keys with a clear error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} for {cls.__name__}; allowed: {sorted(names)}")
    return cls(**{k: _coerce(v) for k, v in values.items()})


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a malformed file raises ``ValueError`` naming the file and the problem."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"malformed TOML in {path}: {err}") from err
    except OSError as err:
        raise ValueError(f"cannot read config file {path}: {err.strerror}") from err


def config_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def check_positive_ints(name: str, values: tuple[Any, ...], low: int = 1) -> None:
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in values):
        raise ValueError(f"{name} must be a non-empty list of integers >= {low}, got {list(values)}")


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
    """Sample counts ``round(c * d^power)`` for each multiple ``c`` (at least ``n_min``, duplicates removed)."""
    return sorted({max(n_min, int(round(c * d**power))) for c in multiples})


def run_experiment(module: Any, config: Any, out_dir: str | Path, execution: str = "auto", progress: bool = True,
                   overwrite: bool = False, mask_samples: bool | None = None) -> tuple[pd.DataFrame, sweep.SweepReport]:
    """Run the experiment's sweep into ``out_dir`` (resuming), return its results table and the sweep report."""
    grid = module.grid(config)
    mask = getattr(config, "mask_samples", False) if mask_samples is None else mask_samples
    extra = dict(experiment=module.NAME, config=config_dict(config))
    report = sweep.run_sweep(grid, out_dir, execution=execution, mask_samples=mask, progress=progress,
                             manifest_extra=extra, overwrite=overwrite)
    return sweep.load_results(out_dir), report


def fmt(x: float) -> str:
    return "never" if not math.isfinite(x) else f"{x:.3g}"
