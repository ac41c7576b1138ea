"""SGD's sample exponents as the theory states them (issue 26): one neuron from a uniformly random direction, the
samples it needs to reach weak recovery ``|<w, u>| >= level`` against ``d``, under online SGD (Ben Arous, Gheissari &
Jagannath 2021), smoothed online SGD (Damian, Nichani, Ge & Lee 2023) and SGD reusing each batch ``passes`` times
(Dandi et al. 2024; Arnaboldi et al. 2024; a ReLU student, batches of ``reuse_batch_over_d * d``, their step),
on ``h_2``, ``h_3``, ``h_4`` and ``tanh`` (generative exponent 1 with information exponent 1, against ``h_3``'s 1 with
3 and ``h_4``'s 2 with 4); and, with the protocol ``committee`` (:mod:`reprjax.methods.sgd_committee`), ``r``
neurons under online SGD on the square loss for a target with ``r`` directions (``paper2``: the paper's
``[h_2(z_1) + h_2(z_2) + h_4(z_1) + h_4(z_2)] / 2``, information exponent 2 per direction; ``sep2``, ``sep3``: the
separable ``[h_k(z_1) + h_k(z_2)] / sqrt(2)``, ``k = 2, 3``), recovery read on the smallest singular value of
``W U^T`` (for ``sep2`` only the subspace is identifiable: the target is rotation invariant inside ``span(U)``).
Targets with ``r > 1`` run only under ``committee`` (``examples/sgd_committee.toml``, ``examples/sgd_separable.toml``).

The protocols, their step sizes and the two exact simulations are in :mod:`reprjax.methods.sgd_protocols` and
:mod:`reprjax.methods.sgd_runs`.  Theory (:func:`reprjax.methods.sgd_protocols.theory_samples`, exponents from
:mod:`reprjax.problem.exponents`): online ``d^(k-1)`` (``k >= 3``), smoothed ``d^(k/2)``, reuse ``d`` up to a log for
generative exponent ``<= 2``; ``d log d`` wherever the relevant exponent is 2, ``d`` where it is 1 (Damian et al.'s
``d^(k/2)`` is for ``k >= 3``; below it the smoothed step,
``lambda^k`` times the online one, keeps the online count).  Budgets and batches follow ``n_th`` of
:func:`~reprjax.methods.sgd_protocols.theory_samples`.

The exponent: per ``(target, protocol, d)`` the share of seeds not yet recovered after ``n`` samples is a curve
falling from 1 to 0 whose crossing of 1/2 is the median samples to recovery; :func:`reprjax.report.exponents.
bootstrap_exponent` fits the slope of its log against ``log d`` with a seed-bootstrap t interval (censored dims kept
at their budget and named); no collapse exponent: the share of seeds not yet recovered is not an error curve
:mod:`reprjax.report.collapse` can place.  Evidence and the measured table: docs/sgd_exponents.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from reprjax import sweep
from reprjax._validate import check_choice
from reprjax.methods import sgd_committee, sgd_protocols, sgd_runs  # noqa: F401 - registers the sgd_* methods
from reprjax.problem import exponents as link_exponents
from reprjax.report import exponent_text
from reprjax.report import exponents as exponent_fits
from reprjax.report import sgd_figures
from reprjax.studies import base

NAME = "sgd-exponents"

#: study target -> (sweep target name, kwargs, normalise)
TARGETS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "he2": ("single_index", dict(k=2), False), "he3": ("single_index", dict(k=3), False),
    "he4": ("single_index", dict(k=4), False), "tanh": ("link", dict(link="tanh"), True),
    "paper2": ("paper", dict(r=2, p=4), False),
    "sep2": ("separable", dict(r=2, k=2), False), "sep3": ("separable", dict(r=2, k=3), False),
}
#: Targets with more than one direction: run only under the ``committee`` protocol.
MULTI_INDEX = frozenset({"paper2", "sep2", "sep3"})
PROTOCOLS = (*sgd_protocols.PROTOCOLS, "committee")
#: Largest batch per protocol: online SGD's reduced batch costs ``O(b)``, the others' ``O(b^2)`` (Bartlett rows:
#: :mod:`reprjax.methods.sgd_protocols`), so they keep small batches and more of them; the committee's full
#: simulation costs ``O(b d)``.  ``reuse`` at ``reuse_batch_over_d > 0`` takes ``b = reuse_batch_over_d * d`` instead.
MAX_BATCH = dict(online=8192, smoothed=64, reuse=64, committee=1024)
#: Points per decade of the recovery curves built from the rows.
CURVE_POINTS_PER_DECADE = 16


def spec(name: str) -> sweep.TargetSpec:
    target, kwargs, normalise = TARGETS[name]
    return sweep.TargetSpec.of(target, normalise=normalise, **kwargs)


def exponents_of(name: str) -> tuple[int, int]:
    """``(information, generative)`` exponents of a study target (:mod:`reprjax.problem.exponents`)."""
    target, kwargs, normalise = TARGETS[name]
    if name in MULTI_INDEX:
        degrees, coeffs = sgd_committee.separable_link(spec(name).build(jax.random.key(0), 8))
        link = link_exponents.PolynomialLink(tuple((k,) for k in degrees), tuple(map(float, coeffs)))
    else:
        link = kwargs["link"] if target == "link" else link_exponents.PolynomialLink(((kwargs["k"],),), (1.0,))
    return link_exponents.information_exponent(link), link_exponents.generative_exponent(link)


def theory(name: str, protocol: str) -> tuple[float, str]:
    """The theorem's exponent of ``n`` in ``d`` and its text (with the log factor and the reference)."""
    k_info, k_gen = exponents_of(name)
    _, power, log = sgd_protocols.theory_samples("online" if protocol == "committee" else protocol, k_info, k_gen, 64)
    ref = dict(online="Ben Arous et al. 2021", smoothed="Damian et al. 2023",
               reuse="Dandi et al. 2024; Arnaboldi et al. 2024",
               committee="Ben Arous et al. 2021 per neuron; Abbe et al. 2023")[protocol]
    return power, f"{power:g}{' (x log d)' if log else ''}, {ref}"


def _check_dims_for(dims_for: Any) -> dict[str, tuple[int, ...]]:
    """``dims_for`` normalised (keys ``"target/protocol"`` naming a study target and protocol, values distinct
    integers >= 8, sorted); ``ValueError`` naming the entry otherwise.  A pair the config does not run is kept and
    ignored by :func:`grid` (the default names ``h_4``'s pairs whatever the targets)."""
    if not isinstance(dims_for, Mapping):
        raise ValueError(f"dims_for must be a table of \"target/protocol\" = [dims], got {dims_for!r}")
    out = {}
    for key, dims in sorted(dims_for.items()):
        target, _, protocol = str(key).partition("/")
        if target not in TARGETS or protocol not in PROTOCOLS:
            raise ValueError(f"dims_for: {key!r} is not \"target/protocol\" with a target of {list(TARGETS)} and a "
                             f"protocol of {list(PROTOCOLS)}")
        dims = tuple(dims) if isinstance(dims, (list, tuple)) else (dims,)
        base.check_positive_ints(f"dims_for[{key!r}]", dims, low=8)
        if len(set(dims)) != len(dims):
            raise ValueError(f"dims_for[{key!r}] must be distinct, got {list(dims)}")
        out[key] = tuple(sorted(dims))
    return out


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096)
    #: ``"target/protocol" = [dims]`` in place of ``dims`` for one pair (pairs the config does not run are ignored;
    #: a config's own table replaces this one whole).  ``h_4`` runs from 64 to 512 at seven points under online SGD,
    #: which needs ``n ~ d^3`` (about ``0.2 d^3``: 2.6e7 samples at ``d = 512``, 5e8 at 1448, past the cap of
    #: ``max_batches`` batches of 8192), and under reuse, which with the ReLU student stops recovering between
    #: ``d = 181`` and 512 (docs/sgd_exponents.md, "The default run")
    dims_for: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=lambda: {
        f"he4/{protocol}": (64, 91, 128, 181, 256, 362, 512) for protocol in ("online", "reuse")})
    targets: tuple[str, ...] = ("he2", "he3", "he4", "tanh")
    #: the single-neuron protocols; the committee runs on multi-direction targets through its presets
    #: (examples/sgd_committee.toml, examples/sgd_separable.toml), not on the single-index default targets
    protocols: tuple[str, ...] = sgd_protocols.PROTOCOLS
    #: 4 passes only: the study's hour (docs/sgd_exponents.md, "The default's cost": batches of d at d = 4096 cost
    #: 0.4 CPU s each whatever the passes, and 2 passes at eta_scale 0.2 are censored at 16 d from d = 1024 on h_3,
    #: spending their whole budget); examples/sgd_reuse.toml compares 2 and 4 passes.
    reuse_passes: tuple[int, ...] = (4,)
    seeds: int = 16
    level: float = 0.5
    budget: float = 16.0
    #: the smoothed protocol's budget (multiple of ``n_th``) and batch cap: its batches stay at most 64 (a batch
    #: costs ``O(b^2)``), so ``h_4`` at ``d = 4096`` (median 1.2e7 samples, ``0.71 d^2``) takes ~2e5 of them
    smoothed_budget: float = 16.0
    smoothed_max_batches: int = 400_000
    #: reuse on ``h_3`` took a median 14.5 ``d`` of its 16 ``d`` at ``d = 4096`` (2 of 16 seeds censored)
    reuse_budget: float = 32.0
    online_eta: float = 0.5
    smoothed_eta: float = 0.5
    reuse_eta: float = 0.2
    reuse_student: str = "relu"
    reuse_batch_over_d: float = 1.0
    reuse_level: float = 0.3
    committee_eta: float = 0.25  # 0.5 is too large for k = 2 (docs/sgd_exponents.md, separable committee)
    lam_scale: float = 1.0
    steps: int = 256
    max_batches: int = 20_000
    records: int = 48
    simulation: str = "auto"
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        base.check_positive_ints("dims", self.dims, low=8)
        for name, values, allowed in (("targets", self.targets, tuple(TARGETS)),
                                      ("protocols", self.protocols, PROTOCOLS)):
            if not values or any(v not in allowed for v in values) or len(set(values)) != len(values):
                raise ValueError(f"{name} must be a non-empty list of distinct names from {list(allowed)}, got "
                                 f"{list(values)}")
        base.check_positive_ints("reuse_passes", self.reuse_passes, low=2)
        for name, values in (("dims", self.dims), ("reuse_passes", self.reuse_passes)):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be distinct, got {list(values)}")
        base.check_ints(self, dims=8, reuse_passes=2, reuse_batch_over_d=0)
        base.check_seeds(self.seeds)
        object.__setattr__(self, "dims_for", _check_dims_for(self.dims_for))
        multi = [t for t in self.targets if t in MULTI_INDEX]
        single = [p for p in self.protocols if p != "committee"]
        if multi and single:
            raise ValueError(f"targets {multi} have more than one direction: they run only under the committee "
                             f"protocol, not {single} (a separate config, e.g. examples/sgd_committee.toml)")
        check_choice("reuse_student", self.reuse_student, sgd_protocols.STUDENTS)
        if not (math.isfinite(self.reuse_batch_over_d) and self.reuse_batch_over_d >= 0):
            raise ValueError(f"reuse_batch_over_d must be a finite number >= 0, got {self.reuse_batch_over_d!r}")
        for name in ("level", "reuse_level"):
            value = getattr(self, name)
            if not (isinstance(value, float) and 0 < value < 1):
                raise ValueError(f"{name} must be in (0, 1), got {value!r}")
        for name in ("budget", "smoothed_budget", "reuse_budget", "online_eta", "smoothed_eta", "reuse_eta",
                     "committee_eta", "lam_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        check_choice("simulation", self.simulation, sgd_protocols.SIMULATIONS)
        if self.bootstrap < 2:
            raise ValueError(f"bootstrap must be an integer >= 2, got {self.bootstrap}")


def grid(config: Config) -> sweep.Grid:
    methods = tuple(f"sgd_{p}" for p in config.protocols)
    eta = dict(online=config.online_eta, smoothed=config.smoothed_eta, reuse=config.reuse_eta,
               committee=config.committee_eta)
    budget = dict(online=config.budget, smoothed=config.smoothed_budget, reuse=config.reuse_budget,
                  committee=config.budget)
    extra = {f"sgd_{p}": (("eta_scale", eta[p]), ("max_batch", MAX_BATCH[p]),
                          ("level", config.reuse_level if p == "reuse" else config.level), ("budget", budget[p]),
                          ("max_batches", config.smoothed_max_batches if p == "smoothed" else config.max_batches))
             + ((("lam_scale", config.lam_scale),) if p == "smoothed" else ())
             + ((("student", config.reuse_student), ("batch_over_d", config.reuse_batch_over_d)) if p == "reuse"
                else ()) for p in config.protocols}
    hyper = (("steps", (config.steps,)), ("records", (config.records,)))
    if set(config.protocols) - {"committee"}:
        hyper += (("simulation", (config.simulation,)),)
    if "reuse" in config.protocols:
        hyper += (("passes", tuple(config.reuse_passes)),)
    pairs = tuple((f"sgd_{protocol}", spec(target).label(), dims) for key, dims in config.dims_for.items()
                  for target, _, protocol in [key.partition("/")]
                  if target in config.targets and protocol in config.protocols)
    return sweep.Grid(methods=methods, targets=tuple(spec(t) for t in config.targets), dims=config.dims,
                      n=(base.MAX_SAMPLES,), widths=(1,), hyper=hyper, seeds=config.seeds,
                      method_hyper=tuple(extra.items()), pair_dims=pairs)


def _family(row: pd.Series) -> str:
    protocol = row["method"].removeprefix("sgd_")
    return f"reuse x{int(row['passes'])}" if protocol == "reuse" else protocol


def _ok_with_family(df: pd.DataFrame) -> pd.DataFrame:
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    return ok.assign(family=[_family(r) for _, r in ok.iterrows()])


def _study_name(label: str) -> str:
    return next(t for t in TARGETS if spec(t).label() == label)


def recovery_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Rows ``(method = family, target, d, n, seed, unrecovered, status)``: per run, whether it had not yet
    recovered after ``n`` samples, on a log grid from the smallest recovery to the largest budget of its family
    (:data:`CURVE_POINTS_PER_DECADE`).  Past a run's budget nothing is known: those points are left out."""
    ok = _ok_with_family(df)
    rows = []
    for (family, target), sub in ok.groupby(["family", "target"]):
        lo = max(1.0, float(sub["recovery_n"].min()) / 2)
        hi = float(sub["n_budget"].max())
        ns = np.unique(np.round(np.geomspace(lo, hi, max(2, int(CURVE_POINTS_PER_DECADE * math.log10(hi / lo)) + 2))))
        for _, r in sub.iterrows():
            for n in ns[ns <= r["n_budget"]]:
                rows.append(dict(method=family, target=target, d=int(r["d"]), n=int(n), seed=int(r["seed"]),
                                 unrecovered=float(not (r["recovered"] > 0 and r["recovery_n"] <= n)), status="ok"))
    return pd.DataFrame(rows, columns=["method", "target", "d", "n", "seed", "unrecovered", "status"])


def summarise(df: pd.DataFrame, config: Config) -> dict[str, Any]:
    """Per run the samples to recovery; per ``(target, protocol, d)`` the median and share recovered; per
    ``(target, protocol)`` the fitted exponent with its interval next to the theory's."""
    ok = _ok_with_family(df)
    failed = int((df["status"] != "ok").sum())
    if ok.empty:
        return dict(runs=pd.DataFrame(), per_d=pd.DataFrame(), exponents=pd.DataFrame(), failed_runs=failed,
                    seconds=math.nan)
    ok = ok.assign(study_target=ok["target"].map(_study_name))
    runs = ok[["study_target", "family", "d", "seed", "recovery_n", "recovered", "n_budget", "batch", "eta",
               "initial_overlap", "wall_time_s"]].rename(columns={"study_target": "target"})
    per_d = (runs.groupby(["target", "family", "d"])
             .agg(median_n=("recovery_n", "median"), recovered=("recovered", "mean"), seeds=("seed", "count"),
                  n_budget=("n_budget", "max"), batch=("batch", "max"), eta=("eta", "max"),
                  seconds=("wall_time_s", "sum")).reset_index())
    per_d.loc[per_d["recovered"] < 0.5, "median_n"] = np.nan  # the median is censored: above the budget
    curves = recovery_curves(df)
    fits = []
    for (family, label), sub in curves.groupby(["method", "target"]):
        name = _study_name(label)
        power, text = theory(name, family.split(" ")[0])
        k_info, k_gen = exponents_of(name)
        # the slope only: the share of seeds not yet recovered is not an error curve the collapse can place
        fit = exponent_fits.bootstrap_exponent(sub, family, 0.5, n_boot=config.bootstrap, metric="unrecovered")
        fits.append(dict(fit, answer=exponent_fits.answer(fit), target=name, k_info=k_info, k_gen=k_gen,
                         theory_exponent=power, theory=text))
    exponents = pd.DataFrame(fits)
    return dict(runs=runs, per_d=per_d, exponents=exponents, failed_runs=failed,
                seconds=float(df["wall_time_s"].sum()) if "wall_time_s" in df.columns else math.nan)


def report(summary: dict[str, Any], config: Config) -> str:
    per_d = summary["per_d"].copy()
    if per_d.empty:
        return f"no successful run ({summary['failed_runs']} failed)"
    lines = [f"Samples to weak recovery |<w, u>| >= {config.level} (reuse: >= {config.reuse_level}; committee: the "
             f"smallest singular value of W U^T >= {config.level}) (median over seeds; '-' where fewer than half the "
             f"seeds recovered within the budget: {config.budget:g} x the theorem's n(d), smoothed "
             f"{config.smoothed_budget:g} x, reuse {config.reuse_budget:g} x; at most max_batches batches):"]
    table = per_d.pivot_table(index=["target", "family"], columns="d", values="median_n", dropna=False)
    recovered = per_d.pivot_table(index=["target", "family"], columns="d", values="recovered").reindex_like(table)
    medians = table.map(lambda v: f"{v:.3g}" if np.isfinite(v) else "-").where(recovered.notna(), "")
    shares = recovered.map(lambda v: f"{v:.2f}" if np.isfinite(v) else "")
    lines += [medians.to_string(), "", "share of seeds recovered within the budget (blank: not run at that d):",
              shares.to_string(),
              "", "exponent of the median samples to recovery against d (slope: 95% t interval from a seed "
              "bootstrap over the resolved dims) | theory:"]
    exps = summary["exponents"]
    for name, sub in exps.groupby("target", sort=False):
        lines.append(f"-- {name} (information exponent {int(sub['k_info'].iloc[0])}, generative exponent "
                     f"{int(sub['k_gen'].iloc[0])})")
        lines += exponent_text.exponent_lines(sub.drop(columns=["target", "k_info", "k_gen", "theory_exponent"]))
    if summary["failed_runs"]:
        lines.append(f"{summary['failed_runs']} runs failed (NaN/inf overlap): not counted")
    lines.append(f"runs' wall time, summed over groups: {summary['seconds']:.1f} s")
    return "\n".join(lines)


def plot(df: pd.DataFrame, config: Config, out_dir: str | Path) -> list[Path]:
    summary = summarise(df, config)
    return sgd_figures.samples_vs_d(summary["runs"], summary["exponents"], Path(out_dir) / "samples_to_recovery",
                                    level=config.level, reuse_level=config.reuse_level)
