"""Sample complexity (PAPER.md, headline experiment 1): test error against ``n`` for each ``d`` and method, ``n*(d)``
at an error threshold, and the exponent of ``n*`` against ``d`` with a bootstrap interval over seeds.

The paper's prediction: Algorithm 1 needs ``n ~ d^2`` (exponent about 2 or lower), kernels ``n ~ d^p`` (exponent
about ``p``, or never within the range).  Default threshold 0.25: half the error left by a fit of the degree-2 part
alone (the paper target keeps half its variance in degree ``p``), so crossing it means most of the degree-p part
was learned.  Kernel ridge costs ``O(n^3)``; its sample counts are capped by ``kernel_n_max``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from reprjax import plotting, sweep
from reprjax.experiments import analysis, base
from reprjax.methods import METHODS

NAME = "sample-complexity"
KERNEL_METHODS = ("entk", "ntk_infinite")


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (16, 32, 64)
    r: int = 2
    p: int = 4
    cross_terms: bool = False
    n_over_d2: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    methods: tuple[str, ...] = ("algorithm1", "entk", "ntk_infinite", "random_features")
    width: int = 1024
    seeds: int = 3
    threshold: float = 0.25
    kernel_n_max: int = 8192
    n_test: int = 4096
    noise: float = 0.0
    mask_samples: bool = False
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        base.check_positive_ints("dims", self.dims)
        base.check_r_d(self.r, self.dims)
        if self.p < 3:
            raise ValueError(f"p must be >= 3 (the degree of the paper target's second part), got {self.p}")
        if not self.n_over_d2 or any(c <= 0 for c in self.n_over_d2):
            raise ValueError(f"n_over_d2 must be a non-empty list of positive numbers, got {list(self.n_over_d2)}")
        bad = [m for m in self.methods if m not in METHODS or m == "transfer"]
        if bad or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {sorted(set(METHODS) - {'transfer'})}, got "
                             f"{list(self.methods)}")
        base.check_seeds(self.seeds)
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.width < 2 or self.width % 2:
            raise ValueError(f"width must be an even integer >= 2, got {self.width}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")


def grid(config: Config) -> sweep.Grid:
    hyper: tuple[tuple[str, tuple[Any, ...]], ...] = (("n_test", (config.n_test,)),)
    if config.noise:
        hyper += (("noise", (config.noise,)),)
    return sweep.Grid(
        methods=config.methods,
        targets=(sweep.TargetSpec.of("paper", r=config.r, p=config.p, cross_terms=config.cross_terms),),
        dims=config.dims,
        n=lambda d: base.n_grid(d, config.n_over_d2),
        widths=(config.width,),
        hyper=hyper,
        seeds=config.seeds,
        method_n_max=tuple((m, config.kernel_n_max) for m in config.methods if m in KERNEL_METHODS),
    )


def summarise(df: pd.DataFrame, config: Config) -> dict[str, Any]:
    """Error table, n* per (method, d) and the fitted exponents with bootstrap intervals."""
    curves = analysis.error_curves(df)
    table = analysis.n_star_table(df, config.threshold)
    exponents = [analysis.bootstrap_exponent(df, m, config.threshold, n_boot=config.bootstrap)
                 for m in config.methods if m in set(df["method"])]
    failed = int((df["status"] != "ok").sum()) if len(df) else 0
    return dict(curves=curves, n_star=table, exponents=pd.DataFrame(exponents), failed_runs=failed)


def report(summary: dict[str, Any], config: Config) -> str:
    curves = summary["curves"].pivot_table(index=["d", "n"], columns="method", values="mean").round(3)
    lines = ["normalised test MSE (mean over seeds):", curves.to_string(), "",
             f"n* at threshold {config.threshold} (nan: not reached within the grid):",
             summary["n_star"].round(1).to_string(index=False), "", "exponent of n* against d (bootstrap 95%):"]
    for _, row in summary["exponents"].iterrows():
        lines.append(f"  {row['method']:16s} {base.fmt(row['exponent'])}  [{base.fmt(row['low'])}, "
                     f"{base.fmt(row['high'])}]  (dims resolved {row['dims_resolved']}/{len(config.dims)}, "
                     f"resamples unresolved {row['unresolved']:.0%})")
    if summary["failed_runs"]:
        lines.append(f"failed runs (not averaged): {summary['failed_runs']}")
    return "\n".join(lines)


def plot(df: pd.DataFrame, config: Config, out_dir: str | Path) -> list[Path]:
    summary = summarise(df, config)
    exps = {r["method"]: r["exponent"] for _, r in summary["exponents"].iterrows()}
    out = plotting.error_vs_n(df, Path(out_dir) / "error_vs_n", threshold=config.threshold,
                              title=f"paper target r={config.r}, p={config.p}")
    out += plotting.n_star_vs_d(summary["n_star"], Path(out_dir) / "n_star_vs_d", config.p, exps)
    return out
