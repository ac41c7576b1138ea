"""Information exponent (docs/setting.md, "What the paper proves", experiment 4): one-step success against the target's
information exponent, with and without label pre-processing.

Targets: the single-index ``h_k(<u, x>)`` for each ``k`` in ``exponents`` (information exponent ``k``) and the
paper target (exponent 2).  One step at ``n = n_over_d2 * d^2`` finds ``span(U)`` only through the degree-2 part
(``H``): ``h_1`` is linear and fit by the pre-processing's ``<beta, x>`` itself, exponent 2 is learned by the step,
exponents >= 3 fail (alignment near ``r/d``).  Without pre-processing, a target with a linear part (``giant_step``)
fails too: the linear part dominates the step.
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
from reprjax.maths.hermite import MAX_DEGREE

NAME = "information-exponent"


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (32,)
    exponents: tuple[int, ...] = (1, 2, 3, 4)
    include_paper: bool = True
    include_giant_step: bool = True
    n_over_d2: tuple[float, ...] = (2.0, 8.0, 32.0)
    preprocess: tuple[bool, ...] = (True, False)
    width: int = 1024
    seeds: int = 3
    n_test: int = 4096
    mask_samples: bool = False

    def __post_init__(self) -> None:
        base.check_fields(self)
        base.check_ints(self, width=2)
        if max(self.exponents) > MAX_DEGREE:
            raise ValueError(f"exponents must be integers in [1, {MAX_DEGREE}], got {list(self.exponents)}")
        base.check_positive_numbers("n_over_d2", self.n_over_d2)


def grid(config: Config) -> sweep.Grid:
    specs = [sweep.TargetSpec.of("single_index", k=k) for k in config.exponents]
    if config.include_paper:
        specs.append(sweep.TargetSpec.of("paper"))
    if config.include_giant_step:
        specs.append(sweep.TargetSpec.of("giant_step", normalise=True))
    return sweep.Grid(methods=("algorithm1",), targets=tuple(specs), dims=config.dims,
                      n=lambda d: base.n_grid(d, config.n_over_d2), widths=(config.width,),
                      hyper=(("n_test", (config.n_test,)), ("preprocess", tuple(config.preprocess))),
                      seeds=config.seeds)


def summarise(df: pd.DataFrame, config: Config) -> dict[str, Any]:
    by = ("target", "preprocess", "d", "n")
    return dict(error=analysis.error_curves(df, "test_nmse", by=by),
                alignment=analysis.error_curves(df, "alignment", by=by), **analysis.run_status(df))


def report(summary: dict[str, Any], config: Config) -> str:
    err = analysis.pivot(summary["error"], index=["target", "preprocess"], columns=["d", "n"]).round(3)
    ali = analysis.pivot(summary["alignment"], index=["target", "preprocess"], columns=["d", "n"]).round(3)
    lines = ["normalised test MSE after one step (mean over seeds):", err.to_string(), "",
             "alignment of W_1 with span(U):", ali.to_string()]
    return "\n".join(lines + analysis.failure_lines(summary))


def plot(df: pd.DataFrame, config: Config, out_dir: str | Path) -> list[Path]:
    out = []
    for pre, sub in df.groupby("preprocess"):
        out += plotting.error_vs_n(sub.assign(method=sub["target"]), Path(out_dir) / f"error_preprocess_{pre}",
                                   title=f"one step, label pre-processing = {pre}")
    return out
