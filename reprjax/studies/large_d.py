"""Large d: Algorithm 1 at the largest dimensions streamed samples allow, error against ``n / d^2``.

The theory is about ``d -> infinity`` with ``n ~ d^2``: if that is the right scale, the curves of the normalised test
error (and of the alignment of ``W_1`` with ``span(U)``) against ``n / d^2`` collapse for every ``d``.  Training
samples are streamed from keys (:mod:`reprjax.problem.streams`), so a run's memory is ``O(chunk * (d + m) + m^2)``
whatever ``n``: ``d = 2048`` at ``n = d^2`` (4,194,304 samples) fits a 24 GiB machine.  The report gives the error
table (rows ``n / d^2``, columns ``d``) and, per ``n / d^2``, the spread of the seed-mean errors across ``d``
(largest over smallest: near 1 when the curves collapse).
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

NAME = "large-d"
TARGETS = ("paper", "giant_step")


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (256, 512, 1024, 2048)
    target: str = "paper"
    r: int = 2
    p: int = 4
    n_over_d2: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    width: int = 1024
    seeds: int = 3
    n_test: int = 8192
    chunk: int = 16384
    mask_samples: bool = False

    def __post_init__(self) -> None:
        base.check_fields(self)
        base.check_ints(self, p=3, width=2)
        base.check_r_d(self.r, self.dims)
        base.check_positive_numbers("n_over_d2", self.n_over_d2)
        if self.target not in TARGETS:
            raise base.ConfigError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.width % 2:
            raise base.ConfigError(f"width must be even (pairs of neurons), got {self.width}")


def _target(config: Config) -> sweep.TargetSpec:
    if config.target == "giant_step":
        return sweep.TargetSpec.of("giant_step", normalise=True)
    return sweep.TargetSpec.of("paper", r=config.r, p=config.p)


def grid(config: Config) -> sweep.Grid:
    return sweep.Grid(methods=("algorithm1",), targets=(_target(config),), dims=config.dims,
                      n=lambda d: base.n_grid(d, config.n_over_d2), widths=(config.width,),
                      hyper=(("n_test", (config.n_test,)), ("chunk", (config.chunk,))), seeds=config.seeds)


def summarise(df: pd.DataFrame, config: Config) -> dict[str, Any]:
    """Error and alignment curves against ``n / d^2`` per ``d``, and the spread of the errors across ``d``."""
    scaled = df.assign(n_over_d2=df["n"] / df["d"] ** 2)
    curves = analysis.error_curves(scaled, by=("d", "n_over_d2"))
    align = analysis.error_curves(scaled, "alignment", by=("d", "n_over_d2"))
    spread = (curves.groupby("n_over_d2")["mean"].agg(lambda s: s.max() / s.min() if s.min() > 0 else float("nan"))
              .rename("max_over_min").reset_index())
    return dict(curves=curves.drop(columns=["n"], errors="ignore"),
                alignment=align.drop(columns=["n"], errors="ignore"), spread=spread, **analysis.run_status(df))


def report(summary: dict[str, Any], config: Config) -> str:
    errors = analysis.pivot(summary["curves"], index=["n_over_d2"], columns="d").round(4)
    align = analysis.pivot(summary["alignment"], index=["n_over_d2"], columns="d").round(3)
    lines = [f"Algorithm 1, {config.target} target, width {config.width}: normalised test MSE (mean over seeds), "
             "rows n / d^2, columns d:", errors.to_string(), "",
             "alignment ||W_1 U^T||^2 / ||W_1||^2 (mean over seeds):", align.to_string(), "",
             "collapse: largest over smallest seed-mean error across d, per n / d^2 (1 = the curves coincide):",
             summary["spread"].round(3).to_string(index=False)]
    return "\n".join(lines + analysis.failure_lines(summary))


def plot(df: pd.DataFrame, config: Config, out_dir: str | Path) -> list[Path]:
    scaled = df.assign(n_over_d2=df["n"] / df["d"] ** 2)
    out = plotting.error_vs_n(scaled, Path(out_dir) / "error_vs_n_over_d2", x="n_over_d2", xlabel="n / d^2",
                              title=f"Algorithm 1 at large d ({config.target} target)")
    return out + plotting.alignment_vs_scaled_n(df, Path(out_dir) / "alignment_vs_n_over_d2")
