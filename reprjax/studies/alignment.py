"""Alignment (docs/setting.md, "What the paper proves", experiment 3): the share of ``W_1`` in ``span(U)`` against
``n / d^2``.

One first-layer step concentrates the first layer in ``span(U)``; the alignment ``||W_1 U^T||^2 / ||W_1||^2`` starts
near ``r/d`` and rises towards 1, at a rate set by ``n / d^2`` (curves for different ``d`` collapse when plotted
against ``n / d^2``).  Runs Algorithm 1 (the alignment is read off the trained first layer).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from reprjax import sweep
from reprjax.report import tables as analysis
from reprjax.report import figures as plotting
from reprjax.studies import base

NAME = "alignment"


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (16, 32, 64)
    r: int = 2
    p: int = 4
    n_over_d2: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    width: int = 512
    seeds: int = 3
    n_test: int = 2048
    mask_samples: bool = False

    def __post_init__(self) -> None:
        base.check_fields(self)
        base.check_ints(self, p=3, width=2)
        base.check_r_d(self.r, self.dims)
        base.check_positive_numbers("n_over_d2", self.n_over_d2)


def grid(config: Config) -> sweep.Grid:
    return sweep.Grid(methods=("algorithm1",), targets=(sweep.TargetSpec.of("paper", r=config.r, p=config.p),),
                      dims=config.dims, n=lambda d: base.n_grid(d, config.n_over_d2), widths=(config.width,),
                      hyper=(("n_test", (config.n_test,)),), seeds=config.seeds)


def summarise(df: pd.DataFrame, config: Config) -> dict[str, Any]:
    curves = analysis.error_curves(df.assign(n_over_d2=df["n"] / df["d"] ** 2), "alignment", by=("d", "n_over_d2"))
    return dict(curves=curves.drop(columns=["n"], errors="ignore"), **analysis.run_status(df))


def report(summary: dict[str, Any], config: Config) -> str:
    table = analysis.pivot(summary["curves"], index=["n_over_d2"], columns="d").round(3)
    lines = ["alignment ||W_1 U^T||^2 / ||W_1||^2 (mean over seeds), rows n / d^2, columns d:", table.to_string()]
    return "\n".join(lines + analysis.failure_lines(summary))


def plot(df: pd.DataFrame, config: Config, out_dir: str | Path) -> list[Path]:
    return plotting.alignment_vs_scaled_n(df, Path(out_dir) / "alignment_vs_n_over_d2")
