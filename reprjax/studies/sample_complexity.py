"""Sample complexity (docs/setting.md, "What the paper proves", experiment 1): test error against ``n`` for each
``d`` and method, ``n*(d)`` at an error threshold, and the exponent of ``n*`` against ``d`` with a bootstrap interval
over seeds.

The paper's prediction: Algorithm 1 needs ``n ~ d^2`` (exponent about 2 or lower), kernels ``n ~ d^p`` (exponent
about ``p``).  Default threshold 0.25: half the error left by a fit of the degree-2 part alone (the paper target keeps
half its variance in degree ``p``), so crossing it means most of the degree-p part was learned.  Kernel methods may
use their own ``kernel_threshold`` (their curves leave the degree-2 plateau slowly, :mod:`reprjax.kernels.theory`);
they solve exactly up to ``exact_n_max`` fitting samples and by Nystrom with ``centres`` centres beyond
(:mod:`reprjax.solvers.nystrom`; ``None``: the rule :func:`reprjax.methods.kernel_ridge.auto_centres`, which
grows with ``d``), up to ``kernel_n_max`` samples, at ``kernel_dims`` (default ``dims``: kernels reach smaller ``d``
than the network); ``kernel_solver = "nystrom"`` sends every kernel run to Nystrom (exact kernel ridge while
the fitting samples are at most ``M``, float64 normal equations, strengths down to 1e-10:
:data:`reprjax.methods.kernel_ridge.NYSTROM_LAMBDAS`). ``kernel_bias_scale``: the kernels' bias variance is its
square (with zero bias the ReLU NTK is positively homogeneous in ``|x|`` and cannot fit the radial part of ``h_2``;
docs/kernels_at_scale.md, "Kernel bias"). The default ``kernel_n_max = 8192`` keeps the default study exact and
minutes long on 2 CPU cores (past it the centres rule takes ``M = 16384`` from ``d = 20`` on, minutes per run);
the preset ``examples/kernel_exponent.toml`` goes to ``n = 262,144`` and measures both exponents.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from reprjax import sweep
from reprjax.report import tables as analysis
from reprjax.report import crossings, exponent_text
from reprjax.report import exponents as exponent_fits
from reprjax.methods import kernel_ridge as baselines
from reprjax.kernels import learning_curve
from reprjax.kernels import theory as kernel_theory
from reprjax.report import figures as plotting
from reprjax.report import kernel_figures as plotting_kernels
from reprjax.problem import targets
from reprjax._validate import check_choice
from reprjax.studies import base
from reprjax.methods.registry import kernel_methods

NAME = "sample-complexity"


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (16, 32, 64)
    kernel_dims: tuple[int, ...] | None = None
    r: int = 2
    p: int = 4
    cross_terms: bool = False
    n_over_d2: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    kernel_n_over_d2: tuple[float, ...] | None = None
    methods: tuple[str, ...] = ("algorithm1", "entk", "ntk_infinite", "random_features")
    width: int = 1024
    seeds: int = 3
    threshold: float = 0.25
    kernel_threshold: float | None = None
    kernel_n_max: int = 8192
    network_n_max: int | None = None
    exact_n_max: int = 8192
    kernel_solver: str = "auto"
    centres: int | None = None
    kernel_bias_scale: float = 1.0
    n_test: int = 4096
    noise: float = 0.0
    mask_samples: bool = False
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        base.check_fields(self)  # types first (booleans, lists, integers), then ranges
        base.check_ints(self)
        base.check_r_d(self.r, self.dims)
        if self.kernel_dims is not None:
            base.check_r_d(self.r, self.kernel_dims)
        if self.p < 3:
            raise ValueError(f"p must be >= 3 (the degree of the paper target's second part), got {self.p}")
        base.check_positive_numbers("n_over_d2", self.n_over_d2)
        if self.kernel_n_over_d2 is not None:
            base.check_positive_numbers("kernel_n_over_d2", self.kernel_n_over_d2)
        base.check_single_task_methods(self.methods)
        base.check_seeds(self.seeds)
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.width < 2 or self.width % 2:
            raise ValueError(f"width must be an even integer >= 2, got {self.width}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        if self.kernel_threshold is not None and not 0 < self.kernel_threshold < 1:
            raise ValueError(f"kernel_threshold must be in (0, 1), got {self.kernel_threshold}")
        if self.centres is not None and self.centres > self.exact_n_max:
            raise ValueError(f"centres = {self.centres} must be <= exact_n_max = {self.exact_n_max} (Nystrom runs "
                             f"only past exact_n_max fitting samples, and needs centres <= samples)")
        check_choice("kernel_solver", self.kernel_solver, baselines.KERNEL_SOLVERS)
        if self.kernel_bias_scale < 0:
            raise ValueError(f"kernel_bias_scale must be >= 0, got {self.kernel_bias_scale}")

    @property
    def kernels(self) -> tuple[str, ...]:
        return tuple(m for m in self.methods if m in kernel_methods())

    @property
    def kernel_dim_list(self) -> tuple[int, ...]:
        """The dims the kernel methods run at: ``kernel_dims``, else ``dims``."""
        return self.dims if self.kernel_dims is None else self.kernel_dims

    def sample_counts(self, d: int) -> list[int]:
        """The sample counts at ``d``: ``n_over_d2`` where the networks run, ``kernel_n_over_d2`` (default the same)
        where the kernels run, their union where both do (each method then runs at every count under its cap)."""
        grids = []
        if d in self.dims and self.networks:
            grids.append(self.n_over_d2)
        if d in self.kernel_dim_list and self.kernels:
            grids.append(self.kernel_n_over_d2 or self.n_over_d2)
        return sorted({n for g in grids for n in base.n_grid(d, g)})

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(m for m in self.methods if m not in kernel_methods())

    def threshold_of(self, method: str) -> float:
        """The n* threshold of ``method`` (``kernel_threshold`` for kernel methods when set)."""
        if method in self.kernels and self.kernel_threshold is not None:
            return self.kernel_threshold
        return self.threshold


def grid(config: Config) -> sweep.Grid:
    hyper: tuple[tuple[str, tuple[Any, ...]], ...] = (("n_test", (config.n_test,)),)
    if config.noise:
        hyper += (("noise", (config.noise,)),)
    return sweep.Grid(
        methods=config.methods,
        targets=(sweep.TargetSpec.of("paper", r=config.r, p=config.p, cross_terms=config.cross_terms),),
        dims=config.dims,
        n=config.sample_counts,
        widths=(config.width,),
        hyper=hyper,
        seeds=config.seeds,
        method_n_max=tuple((m, config.kernel_n_max) for m in config.kernels)
        + tuple((m, config.network_n_max) for m in config.networks if config.network_n_max is not None),
        method_hyper=tuple((m, (("centres", config.centres), ("exact_n_max", config.exact_n_max),
                                ("kernel_solver", config.kernel_solver),
                                ("init_bias_scale", config.kernel_bias_scale))) for m in config.kernels),
        method_dims=tuple((m, config.kernel_dims) for m in config.kernels) if config.kernel_dims else (),
    )


def threshold_groups(config: Config) -> list[tuple[float, tuple[str, ...]]]:
    """``[(threshold, methods)]``: the networks at ``threshold``, the kernels at ``kernel_threshold`` when set."""
    if config.kernel_threshold is None:
        return [(config.threshold, config.methods)]
    groups = [(config.threshold, config.networks), (config.kernel_threshold, config.kernels)]
    return [(t, ms) for t, ms in groups if ms]


def plateaus(config: Config) -> dict[int, list[dict[str, float]]]:
    """The kernel plateaus (:func:`reprjax.kernels.theory.kernel_plateaus`) of the study's target at each ``d``."""
    return {d: kernel_theory.kernel_plateaus(targets.paper_target(jax.random.key(0), d, config.r, config.p,
                                                                  config.cross_terms))
            for d in config.kernel_dim_list}


#: Dimensions past simulation where the kernel learning curve from theory predicts n* (docs/kernel_theory.md).
THEORY_DIMS: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)


@functools.lru_cache(maxsize=8)
def _kernel_theory(config: Config, theory_dims: tuple[int, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    threshold = config.threshold_of("ntk_infinite")
    kernel = baselines.KernelConfig(kernel_solver=config.kernel_solver)
    dims = sorted(set(config.kernel_dim_list) | set(theory_dims))
    by_d = {d: targets.paper_target(jax.random.key(0), d, config.r, config.p, config.cross_terms) for d in dims}
    rows = learning_curve.n_star_table(by_d, threshold, kernel.strengths, bias_var=config.kernel_bias_scale**2,
                                       noise_var=config.noise**2, val_fraction=kernel.val_fraction)
    table = pd.DataFrame(rows).assign(threshold=threshold, simulated=lambda t: t["d"].isin(config.kernel_dim_list))
    points = []
    for d in config.kernel_dim_list:
        spectrum, power = learning_curve.ntk_spectrum_and_power(by_d[d], bias_var=config.kernel_bias_scale**2)
        ns = np.geomspace(min(base.n_grid(d, config.kernel_n_over_d2 or config.n_over_d2)) / 2,
                          2 * config.kernel_n_max, 24)
        errors, chosen = learning_curve.predicted_curve(spectrum, power, ns, kernel.strengths, config.noise**2,
                                                        kernel.val_fraction, float(by_d[d].second_moment()))
        points += [dict(d=d, n=n, error=e, strength=c) for n, e, c in zip(ns, errors, chosen)]
    return table, pd.DataFrame(points)


def kernel_theory_tables(config: Config) -> dict[str, pd.DataFrame]:
    """The infinite-NTK learning curve from theory (:mod:`reprjax.kernels.learning_curve`) when the study runs
    ``ntk_infinite``: ``kernel_theory`` (predicted n* at the kernel threshold for the study's dims and
    :data:`THEORY_DIMS`, with the local exponent) and ``kernel_theory_curves`` (predicted error at the study's dims).
    """
    if "ntk_infinite" not in config.kernels:
        return {}
    table, points = _kernel_theory(config, THEORY_DIMS)
    return dict(kernel_theory=table.copy(), kernel_theory_curves=points.copy())


def summarise(df: pd.DataFrame, config: Config) -> dict[str, Any]:
    """Error table, n* per (method, d) at each family's threshold, the fitted exponents with bootstrap intervals,
    and the theory's kernel plateaus and learning curve."""
    n_star, exponents = [], []
    for threshold, methods in threshold_groups(config):
        sub = df[df["method"].isin(methods)] if len(df) else df
        n_star.append(crossings.n_star_table(sub, threshold).assign(threshold=threshold))
        exponents.append(exponent_fits.exponent_table(sub, threshold, n_boot=config.bootstrap)
                         .assign(threshold=threshold))
    return dict(curves=analysis.error_curves(df), n_star=pd.concat(n_star, ignore_index=True),
                exponents=pd.concat(exponents, ignore_index=True), plateaus=plateaus(config),
                **kernel_theory_tables(config), **analysis.run_status(df))


def report(summary: dict[str, Any], config: Config) -> str:
    curves = analysis.pivot(summary["curves"], index=["d", "n"], columns="method").round(3)
    n_star = summary["n_star"]
    shown = [c for c in ("method", "d", "threshold", "n_star_text", "log_n_star_se", "censored", "n_min", "n_max",
                      "error_at_n_max")
             if c in n_star.columns]
    thresholds = ", ".join(f"{t:g} for {', '.join(ms)}" for t, ms in threshold_groups(config))
    lines = ["normalised test MSE (mean over seeds):", curves.to_string(), "",
             f"n* at threshold {thresholds} (censored: below = under the threshold at the smallest n, "
             f"above = not reached by the largest; log_n_star_se: standard error of log n*, seeds and test estimates):",
             n_star[shown].round(3).to_string(index=False), "",
             "exponent of n* against d (95% t intervals from a seed bootstrap; slope: of log n* on log d over the "
             "resolved dims; collapse: the a that puts every point on one curve against n / d^a):",
             *exponent_text.exponent_lines(summary["exponents"].drop(columns="threshold"),
                                          len(config.dims) if config.kernel_dims is None else None),
             f"theory: Algorithm 1 about 2 (n ~ d^2), rotation-invariant kernels about p = {config.p} (n ~ d^p)", "",
             "kernel plateaus (theory: with d^k << n << d^(k+1) a rotation-invariant kernel learns degrees <= k; "
             "error = energy above degree k):"]
    for k, row in enumerate(next(iter(summary["plateaus"].values()), [])):
        lines.append(f"  k = {k}: error {row['error']:.3g}")
    lines += _kernel_theory_lines(summary)
    return "\n".join(lines + analysis.failure_lines(summary))


def _kernel_theory_lines(summary: dict[str, Any]) -> list[str]:
    table = summary.get("kernel_theory")
    if table is None or not len(table):
        return []
    lines = ["", f"infinite-NTK n* predicted by the kernel learning curve (eigenlearning on N(0, I_d), "
                 f"docs/kernel_theory.md) at threshold {table['threshold'].iloc[0]:g}; ridge tuned over the runs' "
                 f"grid, and over it extended down to 1e-16 (local exponent of the latter from the previous d):"]
    for _, row in table.iterrows():
        exponent = "" if row["exponent"] != row["exponent"] else f"  exponent {row['exponent']:.2f}"
        grid = "not reached" if row["n_star"] != row["n_star"] else f"{row['n_star']:.4g}"
        lines.append(f"  d = {int(row['d'])}{' (simulated)' if row['simulated'] else ''}: n* {grid}, "
                     f"extended grid {row['n_star_extended']:.4g}{exponent}")
    return lines


def plot(df: pd.DataFrame, config: Config, out_dir: str | Path) -> list[Path]:
    summary = summarise(df, config)
    # the slope is drawn only where it is the answer (never a subset fit that contradicts the bound of all dims)
    exps = {r["method"]: r["exponent"] if r["answer"] == "slope" else float("nan")
            for _, r in summary["exponents"].iterrows()}
    out = plotting.error_vs_n(df, Path(out_dir) / "error_vs_n", threshold=config.threshold,
                              title=f"paper target r={config.r}, p={config.p}")
    theory_n_star = summary.get("kernel_theory")
    predicted = None if theory_n_star is None or not len(theory_n_star) else {
        "infinite NTK, theory (eigenlearning)": (theory_n_star["d"], theory_n_star["n_star_extended"])}
    out += plotting.n_star_vs_d(summary["n_star"], Path(out_dir) / "n_star_vs_d", config.p, exps,
                                title=f"paper target r={config.r}, p={config.p}: n* with 95% intervals",
                                predicted=predicted)
    curves = summary["curves"]
    if config.kernels and len(curves):
        lines = {f"threshold {t:g} ({'kernels' if ms == config.kernels else 'networks'})": t
                 for t, ms in threshold_groups(config)}
        theory = summary.get("kernel_theory_curves")
        predicted = None if theory is None else {d: (t["n"], t["error"]) for d, t in theory.groupby("d")}
        out += plotting_kernels.families(curves, Path(out_dir) / "kernels_vs_network", config.kernels,
                                         config.networks, summary["plateaus"], lines,
                                         title=f"paper target r={config.r}, p={config.p}", predicted=predicted)
        powers = {**{m: 2.0 for m in config.networks}, **{m: float(config.p) for m in config.kernels}}
        out += plotting_kernels.collapse(curves, Path(out_dir) / "collapse", powers,
                                         title="networks against n / d^2, kernels against n / d^p",
                                         predicted=predicted)
    fitted = {r["method"]: round(float(r["collapse"]), 2) for _, r in summary["exponents"].iterrows()
              if r["collapse"] == r["collapse"]}  # not nan
    if fitted and len(curves):
        out += plotting_kernels.collapse(curves, Path(out_dir) / "collapse_fitted", fitted,
                                         title="each method against n / d^a at its fitted collapse exponent a")
    return out
