"""Transfer (docs/setting.md, "What the paper proves", experiment 2): ``n*_target`` against ``d`` for a transferred
head, training from scratch, and a kernel.

For each ``d``: ``W_1`` is learned by Algorithm 1 on ``source_n_over_d2 * d^2`` samples of the source head
``g(Ux)`` (the paper target); then only the second layer is refit on ``N`` samples of the target head ``g'(Ux)``
(:func:`reprjax.problem.targets.transfer_head`).  Scratch (Algorithm 1 on the ``N`` samples alone) and kernel ridge see the
same ``N`` samples.  The paper predicts a transferred ``n*_target`` independent of ``d`` (slope ~ 0); the others
grow with ``d``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from reprjax import sweep
from reprjax.report import tables as analysis
from reprjax.report import crossings, exponent_text
from reprjax.report import exponents as exponent_fits
from reprjax.report import figures as plotting
from reprjax.studies import base
from reprjax.methods.registry import METHODS, get_method

NAME = "transfer"
#: Study names that are no registered method: ``scratch`` is Algorithm 1 trained on the target head alone.
_ALIASES = {"scratch": "algorithm1"}


def _method_of(name: str) -> str:
    return _ALIASES.get(name, name)


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (16, 32, 64)
    r: int = 2
    p: int = 4
    N: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096)
    methods: tuple[str, ...] = ("transfer", "scratch", "entk")
    source_n_over_d2: int = 32
    width: int = 1024
    seeds: int = 3
    threshold: float = 0.3
    kernel_n_max: int = 4096
    n_test: int = 4096
    mask_samples: bool = False
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        base.check_fields(self)
        base.check_ints(self, p=3, width=2, N=8)
        if self.width % 2:
            raise ValueError(f"width must be an even integer >= 2 (symmetric initialisation), got {self.width}")
        base.check_r_d(self.r, self.dims)
        if self.r < 2:
            raise ValueError(f"r must be >= 2 for the transfer head (it has a z1 z2 term), got {self.r}")
        allowed = sorted({*_ALIASES, *METHODS})
        if not self.methods or any(m not in allowed for m in self.methods):
            raise ValueError(f"methods must be a non-empty subset of {allowed}, got {list(self.methods)}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


def grid(config: Config) -> sweep.Grid:
    methods = tuple(_method_of(m) for m in config.methods)
    pairs = tuple(m for m in methods if get_method(m).needs_pair)  # they learn on the source head
    return sweep.Grid(
        methods=methods,
        # every method sees the transfer pair; non-transfer methods are scored on its target head (see _targets)
        targets=(sweep.TargetSpec.of("transfer_pair", r=config.r, p=config.p),),
        dims=config.dims,
        n=config.N,
        widths=(config.width,),
        hyper=(("n_test", (config.n_test,)),),
        seeds=config.seeds,
        method_hyper=tuple((m, (("source_n_over_d2", config.source_n_over_d2),)) for m in pairs),
        method_n_max=tuple((m, config.kernel_n_max) for m in methods if get_method(m).kernel),
    )


def summarise(df: pd.DataFrame, config: Config) -> dict[str, Any]:
    return dict(curves=analysis.error_curves(df), n_star=crossings.n_star_table(df, config.threshold),
                exponents=exponent_fits.exponent_table(df, config.threshold, n_boot=config.bootstrap),
                **analysis.run_status(df))


def report(summary: dict[str, Any], config: Config) -> str:
    curves = analysis.pivot(summary["curves"], index=["d", "n"], columns="method").round(3)
    n_star = summary["n_star"]
    shown = [c for c in ("method", "d", "n_star_text", "log_n_star_se", "censored", "n_min", "n_max", "error_at_n_max")
             if c in n_star.columns]
    unresolved = int((n_star["censored"] != "").sum()) if len(n_star) else 0
    lines = ["error on the target head against N (mean over seeds; 'algorithm1' = scratch):", curves.to_string(), "",
             f"n*_target at threshold {config.threshold} (censored: below = already under the threshold at the "
             f"smallest N, above = not reached by the largest; {unresolved}/{len(n_star)} unresolved; log_n_star_se: "
             "standard error of log n*, seeds and test estimates):",
             n_star[shown].round(3).to_string(index=False), "",
             "exponent of n* against d (95% t intervals from a seed bootstrap; slope: of log n* on log d over the "
             "resolved dims; collapse: the a that puts every point on one curve against n / d^a):",
             *exponent_text.exponent_lines(summary["exponents"], len(config.dims))]
    return "\n".join(lines + analysis.failure_lines(summary))


def plot(df: pd.DataFrame, config: Config, out_dir: str | Path) -> list[Path]:
    summary = summarise(df, config)
    # the slope is drawn only where it is the answer (never a subset fit that contradicts the bound of all dims)
    exps = {r["method"]: r["exponent"] if r["answer"] == "slope" else float("nan")
            for _, r in summary["exponents"].iterrows()}
    out = plotting.transfer_curves(df, Path(out_dir) / "transfer_error_vs_N", threshold=config.threshold)
    n_star = summary["n_star"]
    # n* <= N_min is not "not reached": drawn neither as a point nor as an open marker (named in the report)
    out += plotting.n_star_vs_d(n_star[n_star["censored"] != "below"], Path(out_dir) / "transfer_n_star_vs_d",
                                config.p, exps, title="samples on the new head")
    return out
