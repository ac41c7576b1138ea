"""Transfer (docs/setting.md, "What the paper proves", experiment 2): ``n*_target`` against ``d`` for a transferred
head, training from scratch, and a kernel.

For each ``d``: ``W_1`` is learned by Algorithm 1 on ``source_n_over_d2 * d^2`` samples of the source head
``g(Ux)`` (the paper target); then only the second layer is refit on ``N`` samples of the target head ``g'(Ux)``
(:func:`reprjax.problem.targets.transfer_head`).  Scratch (Algorithm 1 on the ``N`` samples alone) and kernel ridge
see the same ``N`` samples.  The paper predicts a transferred ``n*_target`` independent of ``d`` (slope ~ 0); the others
grow with ``d``.

The transferred heads are not sweep runs: each source is learned once per ``(d, source_n_over_d2, seed)`` and every
``N`` is refit from it (:mod:`reprjax.studies.transfer_heads`, rows in ``transfer_heads.jsonl`` beside the sweep's);
``source_n_over_d2`` is a grid, so the report gives ``n*_target`` and the slope per source quality, with the
alignment of ``W_1`` with ``span(U)``.  Theory for the head: with ``W_1`` aligned to ``span(U)`` the head is ridge on
random features of an ``r``-dimensional input, a degree-``p`` polynomial in ``r`` variables has ``C(r + p, p)``
coefficients, so ``n*_target ~ c C(r + p, p)`` with ``c`` independent of ``d``; the figure draws the band
``c`` in :data:`THEORY_BAND` (docs/transfer.md).  ``head_preprocess`` (default off) re-estimates Algorithm 1's
``alpha + <beta, x>`` on the ``N`` target samples before the head: ``beta`` is a ``d``-vector whose estimate adds about
``d / N`` to the error, a ``d``-dependence of the pre-processing and not of the representation (docs/transfer.md).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pandas as pd

from reprjax import sweep
from reprjax.report import tables as analysis
from reprjax.report import crossings, exponent_text
from reprjax.report import exponents as exponent_fits
from reprjax.report import figures as plotting
from reprjax.studies import base, transfer_heads
from reprjax.methods.registry import METHODS, get_method

NAME = "transfer"
#: Study names that are no registered method: ``scratch`` is Algorithm 1 trained on the target head alone.
_ALIASES = {"scratch": "algorithm1"}
#: Constants c of the head's theory line n*_target = c C(r + p, p), drawn as a band (not fitted: docs/transfer.md).
THEORY_BAND = (1.0, 10.0)


def _method_of(name: str) -> str:
    return _ALIASES.get(name, name)


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (16, 32, 64, 128, 256)
    r: int = 2
    p: int = 4
    N: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048, 4096)
    methods: tuple[str, ...] = ("transfer", "scratch", "entk")
    source_n_over_d2: tuple[int, ...] = (1, 4, 16)
    width: int = 512
    seeds: int = 3  # 2 gives a t interval with one degree of freedom (docs/transfer.md)
    threshold: float = 0.3
    kernel_n_max: int = 2048
    n_test: int = 4096
    mask_samples: bool = True
    bootstrap: int = 1000
    #: re-estimate Algorithm 1's ``alpha + <beta, x>`` on the N target samples before the head (costs ~ d / N)
    head_preprocess: bool = False

    def __post_init__(self) -> None:
        base.check_fields(self)
        base.check_ints(self, p=3, width=2, N=8)
        if "transfer" in self.methods and len(set(self.methods)) < 2:
            raise ValueError(f"methods must name a comparison beside transfer (scratch or a kernel), got "
                             f"{list(self.methods)}")
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


def _spec(config: Config) -> sweep.TargetSpec:
    return sweep.TargetSpec.of("transfer_pair", r=config.r, p=config.p)


def grid(config: Config) -> sweep.Grid:
    """The sweep: scratch and kernel runs (the transferred heads run beside it: :func:`run_outside_sweep`).

    Building it also checks the heads' grid and every source config (:func:`check_heads`), so that
    :func:`reprjax.studies.base.checked_grid` refuses a bad head or source before any directory is touched."""
    check_heads(config)
    methods = tuple(_method_of(m) for m in config.methods if not get_method(_method_of(m)).needs_pair)
    return sweep.Grid(
        methods=methods,
        # every method sees the transfer pair; non-transfer methods are scored on its target head
        targets=(_spec(config),),
        dims=config.dims,
        n=config.N,
        widths=(config.width,),
        hyper=(("n_test", (config.n_test,)),),
        seeds=config.seeds,
        method_n_max=tuple((m, config.kernel_n_max) for m in methods if get_method(m).kernel),
    )


def heads_grid(config: Config) -> sweep.Grid | None:
    """The transferred heads' runs (``None`` when ``transfer`` is not among the methods)."""
    if "transfer" not in config.methods:
        return None
    return transfer_heads.heads_grid(_spec(config), config.dims, config.N, config.width, config.seeds,
                                     config.source_n_over_d2, config.n_test, config.head_preprocess)


def check_heads(config: Config) -> None:
    """Everything the transferred heads' runs would reject, now: their grid (:func:`reprjax.studies.base.check_grid`,
    masked as :mod:`reprjax.studies.transfer_heads` runs it) and the Algorithm 1 config of every source, whose
    ``source_n_over_d2 * d^2`` samples must have int32 row indices."""
    heads = heads_grid(config)
    if heads is None:
        return
    base.check_grid(heads, True)
    for group in transfer_heads.source_groups(heads):
        n = group.configs[0].source_config(group.d).n
        if n > base.MAX_SAMPLES:
            raise base.ConfigError(f"source_n_over_d2 = {group.runs[0]['source_n_over_d2']} at d = {group.d} gives "
                                   f"{n:,} source samples, more than {base.MAX_SAMPLES:,} (int32 row indices): lower "
                                   f"source_n_over_d2 or dims")


def run_outside_sweep(config: Config, out_dir: str | Path, progress: bool = True) -> None:
    """Learn each source once and fit the heads of every ``N`` (resumable; :mod:`reprjax.studies.transfer_heads`)."""
    heads = heads_grid(config)
    if heads is not None:
        transfer_heads.run_heads(heads, out_dir, progress)


def rows_outside_sweep(config: Config, out_dir: str | Path, df: pd.DataFrame) -> pd.DataFrame:
    """The sweep's rows ``df`` and the stored rows of the transferred heads, in one table."""
    heads = heads_grid(config)
    if heads is None:
        return df
    extra = transfer_heads.load_heads(heads, out_dir)
    out = pd.concat([t for t in (df, extra) if len(t)], ignore_index=True) if len(extra) else df
    out.attrs = dict(df.attrs)
    return out


def head_coefficients(r: int, p: int) -> int:
    """``C(r + p, p)``: coefficients of a degree-``p`` polynomial in ``r`` variables (the head's theory scale)."""
    return math.comb(r + p, p)


def family_label(c: int) -> str:
    """The ``method`` of transferred heads from a source learned on ``c d^2`` samples (one family per source)."""
    return f"transfer n_src={c}d^2"


def by_source(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each transferred head's method named for its source quality (:func:`family_label`), so every
    table, exponent fit and figure treats each source quality as its own family."""
    if "source_n_over_d2" not in df.columns or not len(df):
        return df
    is_transfer = df["method"] == "transfer"
    out = df.copy()
    out.loc[is_transfer, "method"] = [family_label(int(c)) for c in df.loc[is_transfer, "source_n_over_d2"]]
    return out.drop(columns=["source_n_over_d2"])


def alignment_table(df: pd.DataFrame) -> pd.DataFrame:
    """Alignment of the source ``W_1`` with ``span(U)`` per ``(d, source_n_over_d2)``: mean over seeds (one
    value per source) and its standard error."""
    if "source_n_over_d2" not in df.columns:
        return pd.DataFrame(columns=["d", "source_n_over_d2", "alignment", "alignment_se", "seeds"])
    ok = analysis.ok_rows(df[df["method"] == "transfer"])
    per_source = ok.groupby(["d", "source_n_over_d2", "seed"])["alignment"].first().reset_index()
    agg = per_source.groupby(["d", "source_n_over_d2"])["alignment"].agg(["mean", "std", "count"]).reset_index()
    agg["alignment_se"] = agg["std"] / agg["count"].pow(0.5)
    return agg.rename(columns={"mean": "alignment", "count": "seeds"}).drop(columns=["std"])


def summarise(df: pd.DataFrame, config: Config) -> dict[str, Any]:
    fam = by_source(df)
    return dict(curves=analysis.error_curves(fam), n_star=crossings.n_star_table(fam, config.threshold),
                exponents=exponent_fits.exponent_table(fam, config.threshold, n_boot=config.bootstrap),
                alignment=alignment_table(df), **analysis.run_status(fam))


def report(summary: dict[str, Any], config: Config) -> str:
    curves = analysis.pivot(summary["curves"], index=["d", "n"], columns="method").round(3)
    n_star = summary["n_star"]
    shown = [c for c in ("method", "d", "n_star_text", "log_n_star_se", "censored", "n_min", "n_max", "error_at_n_max")
             if c in n_star.columns]
    unresolved = int((n_star["censored"] != "").sum()) if len(n_star) else 0
    k = head_coefficients(config.r, config.p)
    lo, hi = THEORY_BAND
    lines = ["error on the target head against N (mean over seeds; 'algorithm1' = scratch; 'transfer n_src=c d^2': "
             "the head refit on a first layer learned from c d^2 source samples; the head's own label pre-processing "
             f"{'on' if config.head_preprocess else 'off'}):", curves.to_string(), "",
             f"n*_target at threshold {config.threshold} (censored: below = already under the threshold at the "
             f"smallest N, above = not reached by the largest; {unresolved}/{len(n_star)} unresolved; log_n_star_se: "
             "standard error of log n*, seeds and test estimates):",
             n_star[shown].round(3).to_string(index=False), "",
             f"theory for the head: n*_target ~ c C(r + p, p) = c x {k} (r = {config.r}, p = {config.p}), independent "
             f"of d; band drawn: c in [{lo:g}, {hi:g}] -> [{lo * k:g}, {hi * k:g}] (not fitted)", "",
             "alignment of the source W_1 with span(U) (mean over seeds, its standard error):",
             summary.get("alignment", alignment_table(pd.DataFrame())).round(4).to_string(index=False), "",
             "exponent of n* against d (95% t intervals from a seed bootstrap; slope: of log n* on log d over the "
             "resolved dims; collapse: the a that puts every point on one curve against n / d^a; a ~ 0: the curves "
             "of all d lie on one curve against N itself):",
             *exponent_text.exponent_lines(summary["exponents"], len(config.dims))]
    return "\n".join(lines + analysis.failure_lines(summary))


def plot(df: pd.DataFrame, config: Config, out_dir: str | Path) -> list[Path]:
    summary = summarise(df, config)
    fam = by_source(df)
    # the slope is drawn only where it is the answer (never a subset fit that contradicts the bound of all dims)
    exps = {r["method"]: r["exponent"] if r["answer"] == "slope" else float("nan")
            for _, r in summary["exponents"].iterrows()}
    out = plotting.transfer_curves(fam, Path(out_dir) / "transfer_error_vs_N", threshold=config.threshold)
    n_star = summary["n_star"]
    # n* <= N_min is not "not reached": drawn neither as a point nor as an open marker (named in the report)
    out += plotting.n_star_vs_d(n_star[n_star["censored"] != "below"], Path(out_dir) / "transfer_n_star_vs_d",
                                config.p, exps, title="samples on the new head")
    out += _theory_figure(n_star, summary["alignment"], config, Path(out_dir) / "transfer_sources")
    return out


def _theory_figure(n_star: pd.DataFrame, align: pd.DataFrame, config: Config, path: Path) -> list[Path]:
    """Left: n*_target of the transferred heads against d per source quality, with the theory band
    ``c C(r + p, p)``; right: the source's alignment against ``n_source / d^2`` per ``d``."""
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    k = head_coefficients(config.r, config.p)
    ax.axhspan(THEORY_BAND[0] * k, THEORY_BAND[1] * k, color="0.85",
               label=f"theory: c C(r+p, p), c in [{THEORY_BAND[0]:g}, {THEORY_BAND[1]:g}]")
    for i, c in enumerate(config.source_n_over_d2):
        sub = n_star[n_star["method"] == family_label(c)].sort_values("d") if len(n_star) else n_star
        ok = sub[sub["censored"] == ""] if len(sub) else sub
        if len(ok):
            se = ok["log_n_star_se"].fillna(0).to_numpy()
            y = ok["n_star"].to_numpy(float)
            ax.errorbar(ok["d"], y, yerr=[y - y * (2.718281828 ** -se), y * (2.718281828 ** se) - y], fmt="o-",
                        color=f"C{i}", capsize=2, label=f"n_src = {c} d^2")
        for _, row in (sub[sub["censored"] != ""].iterrows() if len(sub) else []):
            edge = row["n_max"] if row["censored"] == "above" else row["n_min"]
            ax.plot(row["d"], edge, "^" if row["censored"] == "above" else "v", mfc="none", color=f"C{i}")
    ax.set(xscale="log", yscale="log", xlabel="d", ylabel=f"n*_target (NMSE {config.threshold})",
           title="transferred head: n* against d")
    ax.legend(fontsize=7)
    for i, (d, sub) in enumerate(align.groupby("d")):
        bx.errorbar(sub["source_n_over_d2"], sub["alignment"], yerr=sub["alignment_se"].fillna(0), fmt="o-",
                    color=f"C{i}", capsize=2, label=f"d = {d}")
    bx.set(xscale="log", xlabel="n_source / d^2", ylabel="alignment of W_1 with span(U)", title="source quality")
    bx.legend(fontsize=7)
    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return [out]
