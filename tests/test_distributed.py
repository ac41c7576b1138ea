"""The multi-host path: processes joined by jax.distributed run one sweep together, and only process 0 writes."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from reprjax import sweep

REPO = Path(__file__).resolve().parents[1]
METRICS = ["test_nmse", "test_mae", "val_mse", "lam", "alignment"]

_PROCESS = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address="127.0.0.1:{port}", num_processes=2, process_id={pid},
                               initialization_timeout=120)
    sys.path.insert(0, {tests!r})
    from test_distributed import grid
    from reprjax import sweep
    report = sweep.run_sweep(grid(), {out!r}, execution="sharded", progress=False)
    print(json.dumps(dict(pid=jax.process_index(), processes=jax.process_count(), devices=len(jax.devices()),
                          execution=report.execution, groups_run=report.groups_run)))
    jax.distributed.shutdown()
""")


def grid() -> sweep.Grid:
    # one group of 3 seeds, padded to 4 runs over the 2 devices of the 2 processes
    return sweep.Grid(methods=("algorithm1",), dims=(6,), n=(96,), widths=(16,), seeds=3,
                      hyper=(("n_test", (256,)),))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _table(out: Path):
    df = sweep.load_results(out)
    return df.sort_values(["n", "seed"]).reset_index(drop=True)


def test_two_processes_joined_by_jax_distributed_give_the_rows_of_one_and_only_one_writes(tmp_path):
    out, port = tmp_path / "two", _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = os.environ.get("REPRJAX_TEST_XLA_FLAGS", "")  # the suite's compiler flags (conftest)
    procs = [subprocess.Popen([sys.executable, "-c", _PROCESS.format(port=port, pid=pid, tests=str(REPO / "tests"),
                                                                     out=str(out))],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for pid in (0, 1)]
    done = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(err[-2000:] for _, err in done)
    reports = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in done]
    assert [r["pid"] for r in reports] == [0, 1]
    assert all(r["processes"] == 2 and r["devices"] == 2 and r["groups_run"] == 1 for r in reports)
    assert all(r["execution"] == "sharded (sharded x1)" for r in reports)
    lines = (out / sweep.RESULTS_FILE).read_text().splitlines()
    assert len(lines) == len(grid().runs()) == 3  # one writer: each run once, padding dropped
    assert len({json.loads(line)["attempt"] for line in lines}) == 1  # one attempt, from process 0 alone

    sweep.run_sweep(grid(), tmp_path / "one", execution="loop", progress=False)
    two, one = _table(out), _table(tmp_path / "one")
    assert list(two["seed"]) == list(one["seed"]) and list(two["n"]) == list(one["n"])
    assert (two["status"] == "ok").all() and (one["status"] == "ok").all(), (two["error"][0], one["error"][0])
    np.testing.assert_allclose(two[METRICS].values, one[METRICS].values, rtol=2e-3, atol=1e-5)
