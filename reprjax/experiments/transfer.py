"""Transfer (PAPER.md, headline experiment 2): ``n*_target`` against ``d`` for a transferred head, training from
scratch, and a kernel.

For each ``d``: ``W_1`` is learned by Algorithm 1 on ``source_n_over_d2 * d^2`` samples of the source head
``g(Ux)`` (the paper target); then only the second layer is refit on ``N`` samples of the target head ``g'(Ux)``
(:func:`reprjax.targets.transfer_head`).  Scratch (Algorithm 1 on the ``N`` samples alone) and kernel ridge see the
same ``N`` samples.  The paper predicts a transferred ``n*_target`` independent of ``d`` (slope ~ 0); the others
grow with ``d``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from reprjax import plotting, sweep
from reprjax.experiments import analysis, base

NAME = "transfer"
_METHOD_OF = {"transfer": "transfer", "scratch": "algorithm1", "entk": "entk", "random_features": "random_features",
              "ntk_infinite": "ntk_infinite"}


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
        base.check_positive_ints("dims", self.dims)
        base.check_r_d(self.r, self.dims)
        if self.r < 2:
            raise ValueError(f"r must be >= 2 for the transfer head (it has a z1 z2 term), got {self.r}")
        base.check_positive_ints("N", self.N, low=8)
        bad = [m for m in self.methods if m not in _METHOD_OF]
        if bad or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {sorted(_METHOD_OF)}, got {list(self.methods)}")
        base.check_positive_ints("source_n_over_d2", (self.source_n_over_d2,))
        base.check_seeds(self.seeds)
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


def grid(config: Config) -> sweep.Grid:
    methods = tuple(_METHOD_OF[m] for m in config.methods)
    return sweep.Grid(
        methods=methods,
        # every method sees the transfer pair; non-transfer methods are scored on its target head (see _targets)
        targets=(sweep.TargetSpec.of("transfer_pair", r=config.r, p=config.p),),
        dims=config.dims,
        n=config.N,
        widths=(config.width,),
        hyper=(("n_test", (config.n_test,)),),
        seeds=config.seeds,
        method_hyper=(("transfer", (("source_n_over_d2", config.source_n_over_d2),)),),
        method_n_max=tuple((m, config.kernel_n_max) for m in methods if m in ("entk", "ntk_infinite")),
    )


def summarise(df: pd.DataFrame, config: Config) -> dict[str, Any]:
    table = analysis.n_star_table(df, config.threshold)
    exps = [analysis.bootstrap_exponent(df, m, config.threshold, n_boot=config.bootstrap)
            for m in sorted(set(df["method"]))]
    return dict(curves=analysis.error_curves(df), n_star=table, exponents=pd.DataFrame(exps),
                failed_runs=int((df["status"] != "ok").sum()))


def report(summary: dict[str, Any], config: Config) -> str:
    curves = summary["curves"].pivot_table(index=["d", "n"], columns="method", values="mean").round(3)
    lines = ["error on the target head against N (mean over seeds; 'algorithm1' = scratch):", curves.to_string(), "",
             f"n*_target at threshold {config.threshold}:", summary["n_star"].round(1).to_string(index=False), "",
             "slope of n*_target against d (bootstrap 95%):"]
    for _, row in summary["exponents"].iterrows():
        lines.append(f"  {row['method']:16s} {base.fmt(row['exponent'])}  [{base.fmt(row['low'])}, "
                     f"{base.fmt(row['high'])}]  (dims resolved {row['dims_resolved']}/{len(config.dims)})")
    return "\n".join(lines)


def plot(df: pd.DataFrame, config: Config, out_dir: str | Path) -> list[Path]:
    summary = summarise(df, config)
    exps = {r["method"]: r["exponent"] for _, r in summary["exponents"].iterrows()}
    out = plotting.transfer_curves(df, Path(out_dir) / "transfer_error_vs_N", threshold=config.threshold)
    out += plotting.n_star_vs_d(summary["n_star"], Path(out_dir) / "transfer_n_star_vs_d", config.p, exps,
                                title="samples on the new head")
    return out
