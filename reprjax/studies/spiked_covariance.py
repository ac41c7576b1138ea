"""Spiked covariance (Ba et al. 2023, "Learning in the presence of low-dimensional structure: a spiked random matrix
perspective"): error of kernel ridge and of the network as the spike ``theta = d^beta`` grows.

Inputs ``x ~ N(0, I_d + theta mu mu^T)`` with the spike along the first direction ``mu = U[0]`` of the target;
``beta = None`` (written ``"iso"`` in tables) is the isotropic limit ``beta -> -inf``.  By default
(``spike_target = "normalised"``, :class:`reprjax.problem.data.DataConfig`) the target is Ba et al.'s
``f*(x) = g(z)``, ``z = (U Sigma U^T)^{-1/2} U x ~ N(0, I_r)`` (``z_1 = <x, mu> / sqrt(1 + theta)``): its law is that
of the isotropic problem, only the input geometry changes, so the errors (normalised by the exact ``E[f*^2]``) measure
what a spike aligned with the target does to each method.  ``"raw"`` evaluates ``g(U x)`` on the spiked inputs: the
target itself changes with ``theta`` (its degree-4 part grows), and errors are normalised by the test-set ``E[f*^2]``.
Measured (docs/spiked_covariance.md, d = 32): with the normalised target, infinite-NTK ridge gains from the spike;
Algorithm 1 gains only at ``beta = 0`` and degrades beyond, as its step collapses onto the spike and its features are
not rescaled to the spiked inputs -- the failure of covariance-blind gradient steps that Mousavi-Hosseini et al.
(2023, "Gradient-based feature learning under structured data") warn of.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from reprjax import sweep
from reprjax.report import tables as analysis
from reprjax.report import figures as plotting
from reprjax.studies import base
from reprjax.methods.registry import get_method
from reprjax.problem.data import SPIKE_TARGETS, DataConfig

NAME = "spiked-covariance"


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (32,)
    betas: tuple[float | Literal["iso"] | None, ...] = (None, 0.0, 0.25, 0.5, 0.75)
    n_over_d2: tuple[float, ...] = (1.0, 4.0)
    methods: tuple[str, ...] = ("algorithm1", "ntk_infinite")
    r: int = 2
    p: int = 4
    width: int = 1024
    seeds: int = 3
    kernel_n_max: int = 4096
    n_test: int = 4096
    mask_samples: bool = False
    spike_target: str = "normalised"

    def __post_init__(self) -> None:
        base.check_fields(self)
        base.check_ints(self, p=3, width=2)
        if self.width % 2:
            raise ValueError(f"width must be an even integer >= 2 (symmetric initialisation), got {self.width}")
        base.check_r_d(self.r, self.dims)
        base.check_positive_numbers("n_over_d2", self.n_over_d2)
        base.check_single_task_methods(self.methods)
        if len({_beta(b) for b in self.betas}) != len(self.betas):
            raise ValueError(f"betas must be distinct ('iso' and null are the same), got {list(self.betas)}")
        if self.spike_target not in SPIKE_TARGETS:
            raise ValueError(f"spike_target must be one of {SPIKE_TARGETS}, got {self.spike_target!r}")


def _beta(value: Any) -> float | None:
    return None if value is None or value == "iso" else float(value)


def _beta_labels(values: pd.Series) -> pd.Series:
    """``spike_beta`` as text, ``iso`` for the isotropic runs (stored as null)."""
    return values.astype(object).where(values.notna(), "iso").astype(str)


def _target_hyper(config: Config) -> tuple[tuple[str, tuple[str]], ...]:
    """``spike_target`` as a hyper-parameter, only when it is not the data default (the default runs' rows and ids
    stay those of a grid without it)."""
    if config.spike_target == DataConfig().spike_target:
        return ()
    return (("spike_target", (config.spike_target,)),)


def grid(config: Config) -> sweep.Grid:
    return sweep.Grid(methods=config.methods, targets=(sweep.TargetSpec.of("paper", r=config.r, p=config.p),),
                      dims=config.dims, n=lambda d: base.n_grid(d, config.n_over_d2), widths=(config.width,),
                      hyper=(("n_test", (config.n_test,)), ("spike_beta", tuple(_beta(b) for b in config.betas)))
                      + _target_hyper(config),
                      seeds=config.seeds,
                      method_n_max=tuple((m, config.kernel_n_max) for m in config.methods
                                         if get_method(m).kernel))


def summarise(df: pd.DataFrame, config: Config) -> dict[str, Any]:
    df = df.assign(spike_beta=_beta_labels(df["spike_beta"]))
    return dict(error=analysis.error_curves(df, by=("method", "spike_beta", "d", "n")), **analysis.run_status(df))


def report(summary: dict[str, Any], config: Config) -> str:
    table = analysis.pivot(summary["error"], index=["d", "n", "spike_beta"], columns="method").round(3)
    lines = [f"normalised test MSE by spike exponent beta (theta = d^beta; iso = isotropic; {config.spike_target} "
             "target):", table.to_string()]
    return "\n".join(lines + analysis.failure_lines(summary))


def plot(df: pd.DataFrame, config: Config, out_dir: str | Path) -> list[Path]:
    out = []
    for method, sub in df.groupby("method"):
        out += plotting.error_vs_n(sub.assign(method=_beta_labels(sub["spike_beta"])),
                                   Path(out_dir) / f"spiked_{method}", title=f"{method}: panels by spike exponent")
    return out
