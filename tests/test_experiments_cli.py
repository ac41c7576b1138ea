"""Experiments, analysis and the command line: tiny end-to-end runs, n* and exponents, bad input -> exit 2."""

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reprjax import cli, sweep
from reprjax.report import tables as analysis
from reprjax.report import crossings, exponents
from reprjax.studies import STUDIES, base

REPO = Path(__file__).resolve().parents[1]

#: Per study, every option of its config (a test checks that none is missing), at a tiny size and, where one is
#: cheap, a value other than the default: each documented option runs once end to end from the command line.
TINY = {
    "sample-complexity": dict(dims=[6, 8], r=2, p=3, cross_terms=True, n_over_d2=[1.0, 4.0],
                              methods=["algorithm1", "entk", "random_features"], width=16, seeds=2, threshold=0.3,
                              kernel_threshold=0.35, kernel_n_max=256, network_n_max=200, exact_n_max=64,
                              kernel_solver="auto", centres=32, kernel_bias_scale=0.5, n_test=256, noise=0.1,
                              mask_samples=True, bootstrap=50, kernel_dims=[6], kernel_n_over_d2=[2.0, 8.0]),
    "transfer": dict(dims=[6, 8], r=2, p=3, N=[32, 64], methods=["transfer", "scratch", "entk"],
                     source_n_over_d2=[2, 4], width=16, seeds=2, threshold=0.4, kernel_n_max=64, n_test=256,
                     mask_samples=True, bootstrap=50, head_preprocess=True),
    "alignment": dict(dims=[6], r=1, p=3, n_over_d2=[1.0, 4.0], width=16, seeds=2, n_test=256, mask_samples=True),
    "information-exponent": dict(dims=[6], exponents=[2, 3], include_paper=False, include_giant_step=False,
                                 n_over_d2=[4.0], preprocess=[True], width=16, seeds=2, n_test=256,
                                 mask_samples=True),
    "spiked-covariance": dict(dims=[6], betas=["iso", 0.5], n_over_d2=[2.0], methods=["algorithm1", "ntk_infinite"],
                              r=1, p=3, width=16, seeds=2, kernel_n_max=128, n_test=256, mask_samples=True,
                              spike_target="raw"),
    "beyond-one-step": dict(dims=[6], targets=["he3", "staircase"], methods=["one_step", "gd_reuse", "online_sgd"],
                            power=1.5, n_multiples=[4.0, 16.0], width=16, activation="gelu", init_bias_scale=0.5,
                            seeds=2, threshold_fraction=0.6, reuse_steps=1, online_batch=8, online_eta_scale=0.2,
                            online_schedule="exponential", record_every=1, n_test=128, bootstrap=20,
                            mask_samples=True),
    "large-d": dict(dims=[6], target="giant_step", r=1, p=3, n_over_d2=[1.0], width=16, seeds=2, n_test=256,
                    chunk=16, mask_samples=True),
    "sgd-exponents": dict(dims=[8], targets=["tanh"], protocols=["online", "smoothed", "reuse"],
                          reuse_passes=[3], seeds=2, level=0.4, budget=8.0, online_eta=0.4, smoothed_eta=0.4,
                          reuse_eta=0.1, lam_scale=0.8, steps=8, max_batches=100, records=8, simulation="reduced",
                          bootstrap=20, reuse_student="relu", reuse_batch_over_d=1.0, reuse_level=0.3,
                          committee_eta=0.3, smoothed_budget=8.0, smoothed_max_batches=100, reuse_budget=8.0,
                          dims_for={"tanh/reuse": [8]}),
}


def _toml(values: dict) -> str:
    def fmt(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f'"{k}" = {fmt(x)}' for k, x in v.items()) + "}"
        return repr(v)

    return "".join(f"{k} = {fmt(v)}\n" for k, v in values.items())


# ------------------------------------------------------------------------------------------------ analysis
def test_crossing_interpolates_in_log_log_and_censors_outside_the_grid():
    ns = np.array([100, 200, 400, 800])
    errs = 0.8 * (ns / 100.0) ** -1.0  # a power law: exact under log-log interpolation
    inside = crossings.crossing(ns, errs, 0.25)
    assert math.isclose(inside.n_star, 100 * 0.8 / 0.25, rel_tol=1e-9) and inside.censored == ""
    above = crossings.crossing(ns, errs, 0.01)
    assert math.isnan(above.n_star) and above.censored == "above" and above.text == "> 800"
    below = crossings.crossing(ns, errs, 0.9)  # already below at the first point: only n* <= 100 is known
    assert math.isnan(below.n_star) and below.censored == "below" and below.text == "<= 100"


def test_exponent_and_bootstrap_recover_a_known_power_law():
    rng = np.random.default_rng(0)
    rows = []
    for d in (8, 16, 32):
        for n in [int(c * d**2) for c in (0.5, 1, 2, 4, 8, 16)]:
            for seed in range(4):
                err = min(1.0, 2.0 * d**2 / n) * math.exp(0.05 * rng.standard_normal())
                rows.append(dict(method="m", target="t", d=d, n=n, seed=seed, test_nmse=err, status="ok"))
    df = pd.DataFrame(rows)
    out = exponents.bootstrap_exponent(df, "m", threshold=0.25, n_boot=200)
    assert abs(out["exponent"] - 2.0) < 0.1
    assert out["low"] <= 2.0 <= out["high"] and out["unresolved"] == 0.0


def test_failed_runs_are_not_averaged():
    df = pd.DataFrame([dict(method="m", target="t", d=8, n=10, seed=0, test_nmse=0.5, status="ok"),
                       dict(method="m", target="t", d=8, n=10, seed=1, test_nmse=float("nan"), status="failed")])
    curves = analysis.error_curves(df)
    assert curves["mean"].iloc[0] == 0.5 and curves["count"].iloc[0] == 1


# ------------------------------------------------------------------------------------------------ experiments
@pytest.mark.parametrize("name", list(TINY))
def test_each_experiment_runs_end_to_end_through_the_cli(name, tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(_toml(TINY[name]))
    out = tmp_path / "out"
    assert cli.main(["run", name, "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "figures:" in text and (out / "report.txt").exists()
    assert list(out.glob("*.png")) and list(out.glob("*.pdf"))
    df = sweep.load_results(out)
    assert len(df) == len(STUDIES[name].grid(base.config_from_dict(STUDIES[name].Config, TINY[name])).runs())
    assert df.attrs["store_problems"] == []
    arrays = [c for c in df.columns if c.startswith("traj_")]
    assert all(df[c].map(lambda v: isinstance(v, list)).all() for c in arrays)  # trajectories read back as lists
    assert bool(arrays) == (name == "beyond-one-step")
    # resuming does no work and `plot` redraws from disk
    assert cli.main(["run", name, "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert "0 groups run" in capsys.readouterr().out
    assert cli.main(["plot", str(out)]) == 0


def test_the_end_to_end_configs_set_every_option_of_every_study():
    assert set(TINY) == set(STUDIES)
    for name, module in STUDIES.items():
        assert set(TINY[name]) == {f.name for f in dataclasses.fields(module.Config)}, name


def test_example_configs_are_valid():
    examples = sorted((REPO / "examples").glob("*.toml"))
    assert {p.stem.replace("_", "-") for p in examples} >= set(STUDIES)
    for path in examples:
        # the experiment is the file's name, or the one its first line runs (`# reprjax run NAME --config ...`)
        first = path.read_text().splitlines()[0].split()
        name = first[3] if first[:3] == ["#", "reprjax", "run"] else path.stem.replace("_", "-")
        module = STUDIES[name]
        config = base.config_from_dict(module.Config, base.load_toml(path), source=str(path))
        assert module.grid(config).runs()


# ------------------------------------------------------------------------------------------------ bad input
def _run_cli(args, tmp_path):
    done = subprocess.run([sys.executable, "-m", "reprjax.cli", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    return done.returncode, done.stdout, done.stderr


def test_unknown_experiment_exits_2_with_one_line_and_writes_nothing(tmp_path):
    code, _, err = _run_cli(["run", "no-such-thing", "--out", "out"], tmp_path)
    assert code == 2 and "unknown experiment" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_malformed_toml_exits_2(tmp_path):
    (tmp_path / "bad.toml").write_text("dims = [16, 32\nseeds = \n")
    code, _, err = _run_cli(["run", "sample-complexity", "--config", "bad.toml", "--out", "out"], tmp_path)
    assert code == 2 and "malformed TOML" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("body,message", [("dims = [4, 8]\nr = 6\n", "r = 6 exceeds d"),
                                          ("seeds = 0\n", "seeds must be"),
                                          ("widht = 64\n", "unknown key"),
                                          ("methods = [\"svm\"]\n", "methods must be")])
def test_impossible_grid_exits_2_and_writes_nothing(tmp_path, body, message):
    (tmp_path / "c.toml").write_text(body)
    code, _, err = _run_cli(["run", "sample-complexity", "--config", "c.toml", "--out", "out"], tmp_path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,body,message", [
    ("large-d", "dims = [10000000]\n", "dims [10000000] exceed 65,535"),
    ("large-d", "dims = [6]\nn_over_d2 = [1e-9, 2e-9]\n", "all give n = 16 at d = 6"),
    ("alignment", "dims = [6]\nn_over_d2 = [1.0, 1.01]\n", "all give n = 36 at d = 6"),
    ("sample-complexity", "dims = [6]\nr = 1\nkernel_n_max = 10\nmethods = [\"entk\"]\n", "the grid holds no runs"),
])
def test_a_grid_no_run_of_which_could_finish_is_refused_in_one_line_before_the_directory_is_touched(
        tmp_path, capsys, name, body, message):
    (tmp_path / "c.toml").write_text(body)
    assert cli.main(["run", name, "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_whatever_a_config_raises_in_the_pre_run_check_is_one_config_error():
    def broken(d):
        raise ZeroDivisionError("division by zero")

    with pytest.raises(base.ConfigError, match="^the grid cannot run: ZeroDivisionError: division by zero$"):
        base.check_grid(sweep.Grid(methods=("algorithm1",), dims=(6,), n=broken, widths=(16,), seeds=1))

    class Study:
        def grid(config):
            raise KeyError("no such target")

    with pytest.raises(base.ConfigError, match="^the grid cannot be built: KeyError: 'no such target'$"):
        base.checked_grid(Study, None)


def test_results_of_another_configuration_are_not_overwritten(tmp_path, capsys):
    cfg = tmp_path / "a.toml"
    cfg.write_text(_toml(TINY["alignment"]))
    out = tmp_path / "out"
    assert cli.main(["run", "alignment", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    before = (out / sweep.RESULTS_FILE).read_text()
    assert cli.main(["run", "alignment", "--config", str(cfg), "--out", str(out), "--seeds", "3",
                     "--no-progress"]) == 2
    assert "different configuration" in capsys.readouterr().err
    assert (out / sweep.RESULTS_FILE).read_text() == before


def test_help_for_every_command():
    for args in (["--help"], ["demo", "--help"], ["run", "--help"], ["plot", "--help"], ["bench", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(args)
        assert exit_info.value.code == 0


def test_bench_takes_the_harness_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--help"])
    assert exit_info.value.code == 0
    assert "--only" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--only", "no_such_benchmark"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err  # one line, no usage block before it
    assert "invalid choice" in err and len(err.strip().splitlines()) == 1 and "usage" not in err
