"""Sweep engine: grouping and masking, resuming after SIGKILL, vmapped/sharded = loop, failures recorded."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reprjax import sweep

REPO = Path(__file__).resolve().parents[1]
METRICS = ["test_nmse", "test_mae", "val_mse", "lam"]


def small_grid(**overrides) -> sweep.Grid:
    kwargs = dict(methods=("algorithm1", "random_features"), dims=(6,), n=(96, 160), widths=(16,), seeds=2,
                  hyper=(("n_test", (256,)),))
    kwargs.update(overrides)
    return sweep.Grid(**kwargs)


def _table(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["method", "target", "d", "n", "width", "seed"]
    return df.sort_values(keys).reset_index(drop=True)[keys + METRICS + ["status"]]


def test_grid_expands_full_product_and_groups_by_static_structure():
    grid = small_grid(hyper=(("n_test", (256,)), ("eta_scale", (0.5, 1.0)), ("preprocess", (True, False))))
    runs = grid.runs()
    assert len(runs) == 2 * 2 * 2 * 2 * 2  # methods x n x eta x preprocess x seeds
    groups = sweep.make_groups(grid)
    # eta_scale is a leaf (vmapped inside a group); preprocess and n are static (split groups)
    assert len(groups) == 2 * 2 * 2
    assert all(g.size == 4 for g in groups)
    masked = sweep.make_groups(grid, mask_samples=True)
    assert len(masked) == 2 * 2 and all(g.size == 8 for g in masked)
    assert {c.n for g in masked for c in g.configs} == {160}
    assert sorted({int(c.n_active) for g in masked for c in g.configs}) == [96, 160]


def test_masked_groups_share_one_program_and_match_unmasked(tmp_path):
    grid = small_grid(methods=("algorithm1",), n=(64, 96, 160))
    plain = sweep.run_sweep(grid, tmp_path / "plain", execution="loop", progress=False)
    masked = sweep.run_sweep(grid, tmp_path / "masked", execution="loop", mask_samples=True, progress=False)
    assert plain.programs_compiled == 3 and masked.programs_compiled == 1
    a, b = _table(sweep.load_results(tmp_path / "plain")), _table(sweep.load_results(tmp_path / "masked"))
    np.testing.assert_allclose(a[METRICS].values, b[METRICS].values, rtol=2e-3, atol=1e-5)


_KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_sweep import small_grid
    from reprjax import sweep
    calls = []
    def slow(group):
        calls.append(group)
        if len(calls) > 1:
            time.sleep(30)  # the parent kills us here, after the first group is on disk
    sweep.run_sweep(small_grid(), {out!r}, execution="loop", progress=False, on_group=slow)
""")


def test_sweep_killed_midway_resumes_to_the_same_table(tmp_path):
    out = tmp_path / "killed"
    script = _KILL_SCRIPT.format(tests=str(REPO / "tests"), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    results = out / sweep.RESULTS_FILE
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and len(sweep.load_results(out)) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = sweep.load_results(out)
    assert 0 < len(partial) < len(small_grid().runs())
    # a write cut mid-line by the kill is ignored too
    with open(results, "a") as fh:
        fh.write('{"method": "algorithm1", "group_id": "cut')
    report = sweep.run_sweep(small_grid(), out, execution="loop", progress=False)
    assert report.groups_skipped >= 1 and report.groups_run >= 1
    fresh = tmp_path / "fresh"
    sweep.run_sweep(small_grid(), fresh, execution="loop", progress=False)
    pd.testing.assert_frame_equal(_table(sweep.load_results(out)), _table(sweep.load_results(fresh)))
    # and a third run does nothing
    again = sweep.run_sweep(small_grid(), out, execution="loop", progress=False)
    assert again.groups_run == 0


_SHARDED_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    import jax
    assert len(jax.devices()) == 4, jax.devices()
    sys.path.insert(0, {tests!r})
    from test_sweep import small_grid
    from reprjax import sweep
    for mode in ("vmap", "sharded"):
        rep = sweep.run_sweep(small_grid(seeds=6), {out!r} + "/" + mode, execution=mode, progress=False)
        print(mode, rep.device, rep.execution)
""")


def test_vmapped_and_sharded_sweeps_give_the_rows_of_a_sequential_loop(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = os.environ.get("REPRJAX_TEST_XLA_FLAGS", "")  # the suite's compiler flags (conftest)
    script = _SHARDED_SCRIPT.format(tests=str(REPO / "tests"), out=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sharded cpu:cpu x4 sharded (sharded x" in done.stdout
    sweep.run_sweep(small_grid(seeds=6), tmp_path / "loop", execution="loop", progress=False)
    threads = sweep.run_sweep(small_grid(seeds=6), tmp_path / "threads", execution="threads", progress=False)
    assert threads.execution.startswith("threads (threads x")
    loop = _table(sweep.load_results(tmp_path / "loop"))
    for mode in ("threads", "vmap", "sharded"):
        other = _table(sweep.load_results(tmp_path / mode))
        assert len(other) == len(loop) == 24  # 6 seeds per group: 2 per device after padding to 8, padding dropped
        pd.testing.assert_frame_equal(loop[["method", "n", "seed", "status"]], other[["method", "n", "seed", "status"]])
        np.testing.assert_allclose(loop[METRICS].values, other[METRICS].values, rtol=2e-3, atol=1e-5)


def test_failing_group_is_recorded_and_the_sweep_goes_on(tmp_path):
    # transfer needs a (source, target) pair: its group raises; eta_scale = 1e38 diverges to NaN
    grid = sweep.Grid(methods=("transfer", "algorithm1"), dims=(6,), n=(96,), widths=(16,), seeds=2,
                      hyper=(("n_test", (256,)), ("eta_scale", (1.0, 1e38))))
    report = sweep.run_sweep(grid, tmp_path, execution="loop", progress=False)
    df = sweep.load_results(tmp_path)
    assert len(df) == len(grid.runs()) == 8
    raised = df[df["method"] == "transfer"]
    assert (raised["status"] == "failed").all() and raised["error"].str.contains("pair").all()
    alg = df[df["method"] == "algorithm1"]
    assert (alg[alg["eta_scale"] == 1.0]["status"] == "ok").all()
    diverged = alg[alg["eta_scale"] == 1e38]
    assert (diverged["status"] == "failed").all() and (diverged["error"] == "NaN/inf outcome").all()
    assert report.groups_failed == 2
    # failed groups count as done unless asked to retry
    assert sweep.run_sweep(grid, tmp_path, execution="loop", progress=False).groups_run == 0
    assert sweep.run_sweep(grid, tmp_path, execution="loop", progress=False, retry_failed=True).groups_run == 2


def test_results_directory_of_another_configuration_is_never_overwritten_silently(tmp_path):
    sweep.run_sweep(small_grid(methods=("algorithm1",), n=(96,)), tmp_path, progress=False)
    before = (tmp_path / sweep.RESULTS_FILE).read_text()
    with pytest.raises(sweep.ConfigurationMismatch, match="different configuration"):
        sweep.run_sweep(small_grid(methods=("algorithm1",), n=(160,)), tmp_path, progress=False)
    assert (tmp_path / sweep.RESULTS_FILE).read_text() == before
    sweep.run_sweep(small_grid(methods=("algorithm1",), n=(160,)), tmp_path, progress=False, overwrite=True)
    assert set(sweep.load_results(tmp_path)["n"]) == {160}
    manifest = json.loads((tmp_path / sweep.MANIFEST_FILE).read_text())
    assert manifest["n_runs"] == 2


def test_bad_grid_raises_before_writing(tmp_path):
    with pytest.raises(ValueError, match="method must be one of"):
        sweep.run_sweep(small_grid(methods=("svm",)), tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="r must be in"):
        sweep.run_sweep(small_grid(targets=(sweep.TargetSpec.of("paper", r=8),)), tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="execution"):
        sweep.make_executor(execution="threaded")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_auto_execution_on_cpu_runs_side_by_side_only_what_balances_and_fits(monkeypatch):
    monkeypatch.setattr(sweep.host_threads, "cpu_cores", lambda: 2)
    executor = sweep.make_executor()
    assert isinstance(executor, sweep.CpuExecutor)

    def group(seeds, **kw):
        return sweep.make_groups(small_grid(seeds=seeds, **kw))[0]

    def working_set(g):
        return g.method.cost(g.configs[0], g.d).working_set_bytes

    assert executor.path(group(4)) == "threads"
    assert executor.path(group(9)) == "threads"  # 5 and 4 runs: the idle tail is short
    assert executor.path(group(3)) == "loop"  # 2 and 1 runs: one core idle half the time
    assert executor.path(group(1)) == "loop"
    monkeypatch.setattr(sweep.cpu, "CPU_THREADS_BYTES", working_set(group(4)) * 2 - 1)
    assert executor.path(group(4)) == "loop"  # two runs at once would not fit the memory budget
    monkeypatch.setattr(sweep.cpu, "CPU_THREADS_BYTES", 4 * 2**30)
    monkeypatch.setattr(sweep.host_threads, "cpu_cores", lambda: 1)
    assert executor.path(group(4)) == "loop"
    # the loop holds OpenBLAS to one thread unless a run factorises a large matrix (kernel ridge at large n)
    assert executor.blas_limit(group(3), "loop") == 1
    big = group(3, methods=("entk",), n=(4096,))
    assert big.method.cost(big.configs[0], big.d).largest_factorisation == 4096
    assert executor.blas_limit(big, "loop") is None
    assert sweep.make_executor("loop").blas_limit(group(3), "loop") is None  # explicit loop: untouched
    assert executor.blas_limit(group(3), "sharded") == 1  # host devices side by side


def test_hyper_parameter_applies_only_to_the_methods_that_declare_it():
    grid = small_grid(methods=("algorithm1", "entk"), n=(96,), hyper=(("n_test", (256,)), ("eta_scale", (0.5, 1.0))))
    runs = grid.runs()
    alg = [r for r in runs if r["method"] == "algorithm1"]
    ntk = [r for r in runs if r["method"] == "entk"]
    assert sorted({r["eta_scale"] for r in alg}) == [0.5, 1.0] and len(alg) == 2 * 2
    assert len(ntk) == 2 and all("eta_scale" not in r and r["n_test"] == 256 for r in ntk)  # not duplicated
    groups = sweep.make_groups(grid)  # every config builds: the kernel config never sees eta_scale
    assert {g.method.name for g in groups} == {"algorithm1", "entk"}
    assert all(c.n_test == 256 for g in groups for c in g.configs)


def test_hyper_parameter_no_method_declares_is_refused_in_one_line_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"^hyper-parameter 'eta_scal' is not a field .*algorithm1, entk\)$"):
        sweep.run_sweep(small_grid(methods=("algorithm1", "entk"), hyper=(("eta_scal", (1.0,)),)), tmp_path / "a",
                        progress=False)
    with pytest.raises(ValueError, match="method_hyper for 'entk': 'eta_scale' is not a field"):
        small_grid(method_hyper=(("entk", (("eta_scale", 2.0),)),), methods=("entk",)).runs()
    assert not (tmp_path / "a").exists()
    # a name that is no field but that the config builder converts (the spike exponent) is declared
    assert len(small_grid(hyper=(("spike_beta", (0.5,)),)).runs()) == 2 * 2 * 2


@pytest.mark.parametrize("field, value", [("seeds", 0), ("seeds", 1.5), ("dims", (6, 6)), ("dims", (6.5,)),
                                          ("dims", ()), ("n", (96, 96)), ("n", (0,)), ("widths", (16, 16.0))])
def test_grid_refuses_bad_sizes_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field} must"):
        small_grid(**{field: value})


def test_sample_counts_from_a_callable_are_checked_when_expanded():
    with pytest.raises(ValueError, match="^n must be an integer"):
        small_grid(n=lambda d: [d * 1.5]).runs()


def test_stray_lines_in_results_are_skipped_not_fatal(tmp_path):
    from reprjax.sweep import store

    good = dict(group_id="g", attempt="a", group_size=1, status="ok", test_nmse=0.5)
    lines = [json.dumps(good), '{"no": "group"}', "[1, 2]", '{"group_id": "g2", "attempt"', "garbage"]
    (tmp_path / store.RESULTS_FILE).write_text("\n".join(lines) + "\n")
    assert store.read_rows(tmp_path / store.RESULTS_FILE) == [good]
    assert store.finished_groups(tmp_path) == {"g"}
    assert len(store.load_results(tmp_path)) == 1


def _maps() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def test_program_cache_keeps_the_most_recent_programs_and_frees_the_dropped_ones():
    """Bounded cache: the least recently used program is dropped (its compiled code freed), a re-used one is kept,
    a dropped one called again counts as a new compilation."""
    import gc

    import jax
    import jax.numpy as jnp

    def build(i):
        def f(a):
            for _ in range(8):
                a = jnp.tanh(a * 1.01 + i) + jnp.sin(a).sum(0)
            return a
        return jax.jit(f)

    with pytest.raises(ValueError, match="max_programs"):
        sweep.ProgramCache(0)
    cache = sweep.ProgramCache(max_programs=3)
    x = jnp.ones((32, 16))
    for i in range(3):
        cache.get(("p", i), lambda i=i: build(i))(x)
    cache.get(("p", 0), lambda: build(0))(x)  # 0 is now the most recent: 1 is the oldest
    assert cache.compiled == 3 and len(cache) == 3
    cache.get(("p", 3), lambda: build(3))(x)
    assert len(cache) == 3 and cache.compiled == 4
    rebuilt = []
    cache.get(("p", 0), lambda: rebuilt.append(0) or build(0))(x)
    assert not rebuilt and cache.compiled == 4  # kept
    cache.get(("p", 1), lambda: rebuilt.append(1) or build(1))(x)
    assert rebuilt == [1] and cache.compiled == 5  # dropped, built and compiled again
    if os.path.exists("/proc/self/maps"):  # Linux: the compiled code of dropped programs is unmapped
        gc.collect()
        start = _maps()
        held = [build(i) for i in range(100, 115)]
        for program in held:
            program(x)
        held_growth = _maps() - start
        del held, program
        sweep.release_programs()
        start = _maps()
        for i in range(10, 25):
            cache.get(("p", i), lambda i=i: build(i))(x)
        gc.collect()
        assert _maps() - start < held_growth / 3
    cache.clear()
    assert len(cache) == 0


def test_program_cache_bounds_the_compiled_signatures_too():
    """A program called with new shapes holds one executable per shape: the cache drops the least recently used
    programs once the kept ones hold more than ``max_signatures`` (never the program being called)."""
    import jax
    import jax.numpy as jnp

    with pytest.raises(ValueError, match="max_signatures"):
        sweep.ProgramCache(max_signatures=0)
    cache = sweep.ProgramCache(max_programs=10, max_signatures=3)
    f = cache.get(("p", 0), lambda: jax.jit(jnp.sin))
    for size in (2, 3):
        f(jnp.ones(size))
    assert cache.signatures == 2 and len(cache) == 1
    g = cache.get(("p", 1), lambda: jax.jit(jnp.cos))
    g(jnp.ones(2))
    assert len(cache) == 2 and cache.signatures == 3
    g(jnp.ones(3))  # 4 signatures > 3: the older program (p, 0) goes, its two executables with it
    assert len(cache) == 1 and cache.signatures == 2 and cache.compiled == 4
    for size in (4, 5, 6):  # the program being called is never dropped, even alone over the bound
        g(jnp.ones(size))
    assert len(cache) == 1 and cache.signatures == 5


def test_grid_refuses_per_method_entries_for_methods_it_does_not_run():
    """A cap or an extra hyper-parameter for a method the grid does not run is a typo (a cap silently ignored could
    start an O(n^3) kernel job): refused, naming the field and the method."""
    base = dict(methods=("algorithm1",), dims=(6,), n=(64,), widths=(16,), seeds=1)
    with pytest.raises(ValueError, match="method_n_max names 'entk'.*algorithm1"):
        sweep.Grid(**base, method_n_max=(("entk", 512),)).runs()
    with pytest.raises(ValueError, match="method_hyper names 'ntk_infinite'"):
        sweep.Grid(**base, method_hyper=(("ntk_infinite", (("exact_n_max", 8),)),)).runs()
    with pytest.raises(ValueError, match="method_n_max for 'algorithm1'"):
        sweep.Grid(**base, method_n_max=(("algorithm1", 0),)).runs()
    assert len(sweep.Grid(**base, method_n_max=(("algorithm1", 64),)).runs()) == 1
