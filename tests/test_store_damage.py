"""A damaged results store: every readable row is used, every other line is named, nothing dies or is lost."""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax import cli, sweep
from reprjax.studies import STUDIES, base
from reprjax.sweep import store

ALIGNMENT = "dims = [6]\nn_over_d2 = [1.0, 4.0]\nwidth = 16\nseeds = 2\nn_test = 64\n"


def _row(gid="g", attempt="a", size=2, seed=0, **extra):
    return dict(dict(method="m", target="t", d=4, n=16, width=8, seed=seed, group_id=gid, group_size=size,
                     attempt=attempt, status="ok", error=None, test_nmse=0.5), **extra)


def _write(path: Path, lines: list[bytes]) -> Path:
    f = path / store.RESULTS_FILE
    f.write_bytes(b"".join(line + b"\n" for line in lines))
    return f


def _enc(row) -> bytes:
    return json.dumps(row).encode()


# ------------------------------------------------------------------------------------------------ the reader
def test_a_line_that_is_not_utf8_is_skipped_and_named_not_fatal(tmp_path):
    good = [_row(seed=0), _row(seed=1)]
    _write(tmp_path, [_enc(good[0]), b'{"group_id": "h\xff"}', _enc(good[1])])
    df, problems = store.read_results(tmp_path)
    assert len(df) == 2 and problems == ["line 2: not UTF-8 (byte 0xff at column 16)"]
    assert store.finished_groups(tmp_path) == {"g"}


def test_an_ill_typed_outcome_is_skipped_and_its_group_is_reported_incomplete(tmp_path):
    rows = [_row(seed=0), _row(seed=1, test_nmse="abc"), _row(gid="h", size=1)]
    _write(tmp_path, [_enc(r) for r in rows])
    df, problems = store.read_results(tmp_path)
    assert list(df["group_id"]) == ["h"]  # pandas never sees the string
    assert problems[0].startswith("line 2: test_nmse = \"abc\" is not a number")
    assert problems[1].startswith("group g: 1 readable row(s)")


def test_a_field_of_another_kind_than_in_the_other_rows_is_skipped(tmp_path):
    rows = [_row(seed=0, eta=0.1), _row(seed=1, eta=0.1), _row(gid="h", size=1, eta="fast")]
    _write(tmp_path, [_enc(r) for r in rows])
    df, problems = store.read_results(tmp_path)
    assert len(df) == 2 and problems[0] == 'line 3: eta = "fast" is a string where the other rows hold a number'


def test_an_edited_group_size_is_reported_and_its_complete_group_kept(tmp_path):
    rows = [_row(seed=0, size=3), _row(seed=1, size=3), _row(seed=2, size=7)]
    _write(tmp_path, [_enc(r) for r in rows])
    df, problems = store.read_results(tmp_path)
    assert sorted(df["seed"]) == [0, 1, 2]
    assert problems == ["line 3: group_size 7 disagrees with the size 3 of its group g; the row is kept"]
    # the grid's size wins when it is known; a row of no group of the grid, or no run of its group, is named
    groups = {"g": [{k: r[k] for k in ("method", "target", "d", "n", "width", "seed")} for r in rows]}
    _write(tmp_path, [_enc(r) for r in rows] + [_enc(_row(gid="zz", size=1)), _enc(_row(seed=9, attempt="b"))])
    df, problems = store.read_results(tmp_path, groups)
    assert sorted(df["seed"]) == [0, 1, 2]
    assert any(p.startswith("line 4: group_id \"zz\" is not a group") for p in problems)
    assert any(p.startswith("line 5: its run fields") for p in problems)


def test_cut_copied_and_foreign_lines_are_each_named(tmp_path):
    a, b = _enc(_row(seed=0)), _enc(_row(seed=1))
    _write(tmp_path, [a, a, b, b'[1, 2]', b'{"no": "row"}', b[:30]])
    df, problems = store.read_results(tmp_path)
    assert len(df) == 2
    assert problems == ["line 4: not a row of a sweep (no group_id, attempt and group_size)",
                        "line 5: not a row of a sweep (no group_id, attempt and group_size)",
                        "line 6: not a whole JSON row (a write cut by a kill, or an edit)",
                        "line 2: a copy of an earlier row of group g; skipped"]


def test_array_outcomes_round_trip_as_lists(tmp_path):
    class Stacked:  # two runs' metrics: a scalar, a flag and a (K, r) trajectory
        def __init__(self):
            self.test_nmse = np.array([0.5, 0.25], np.float32)
            self.failed = np.array([False, False])
            self.traj_best_cosine = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
            self.traj_steps = np.array([[0, 1, 2], [0, 1, 2]], np.int32)
            self.not_recorded = None

    group = sweep.Group(method=None, d=4, target=None, runs=[dict(seed=0), dict(seed=1)], configs=[], group_id="g")
    rows = store.group_rows(group, Stacked(), None, 1.0, "cpu", "a")
    store.append_rows(tmp_path / store.RESULTS_FILE, rows)
    df = sweep.load_results(tmp_path)
    assert (df["status"] == "ok").all() and "not_recorded" not in df.columns
    np.testing.assert_array_equal(np.asarray(df["traj_best_cosine"][1]), np.arange(6, 12).reshape(3, 2))
    assert df["traj_steps"][0] == [0, 1, 2] and df.attrs["store_problems"] == []


# ------------------------------------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny alignment sweep: its directory and config file (copied per example, never edited)."""
    root = tmp_path_factory.mktemp("finished")
    (root / "a.toml").write_text(ALIGNMENT)
    assert cli.main(["run", "alignment", "--config", str(root / "a.toml"), "--out", str(root / "out"),
                     "--no-progress"]) == 0
    return root


_OTHER_KIND = st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=2), st.booleans(),
                        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))
_DAMAGE = st.one_of(
    st.tuples(st.just("bytes"), st.integers(0, 10**6), st.integers(0, 10**6), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("type"), st.integers(0, 10**6), st.integers(0, 10**6), _OTHER_KIND),
    st.tuples(st.just("bookkeeping"), st.integers(0, 10**6), st.sampled_from(["group_size", "group_id", "attempt"]),
              st.one_of(st.integers(-2, 9), st.text(max_size=4))),
    st.tuples(st.just("copy"), st.integers(0, 10**6)),
)


def _damage(lines: list[bytes], op) -> list[bytes]:
    lines = list(lines)
    i = op[1] % len(lines)
    if op[0] == "bytes":
        at = op[2] % (len(lines[i]) + 1)
        lines[i] = lines[i][:at] + op[3] + lines[i][at:]
    elif op[0] == "cut":
        lines[i] = lines[i][:op[2] % max(len(lines[i]), 1)]  # a line an earlier cut emptied stays empty
    elif op[0] == "copy":
        lines.insert(i, lines[i])
    else:
        try:
            row = json.loads(lines[i])
        except ValueError:  # a line an earlier operation already broke
            return lines
        if not isinstance(row, dict) or not row:
            return lines
        key = sorted(row)[op[2] % len(row)] if op[0] == "type" else op[2]
        if op[0] == "type" and store._kind(op[3]) == store._kind(row[key]):
            return lines
        row[key] = op[3]
        lines[i] = json.dumps(row).encode()
    return lines


@settings(max_examples=6, deadline=None)
@given(ops=st.lists(_DAMAGE, min_size=1, max_size=4))
def test_plot_and_resume_survive_any_damage_to_the_store_keeping_every_intact_row(finished, ops, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        shutil.copytree(finished / "out", out)
        original = (out / store.RESULTS_FILE).read_bytes().split(b"\n")[:-1]
        lines = original
        for op in ops:
            lines = _damage(lines, op)
        (out / store.RESULTS_FILE).write_bytes(b"".join(line + b"\n" for line in lines))
        intact = [line for line in original if line in lines]
        intact_groups = {json.loads(line)["group_id"] for line in intact} - {
            json.loads(line)["group_id"] for line in original if line not in lines}
        module = STUDIES["alignment"]
        config = base.config_from_dict(module.Config, base.load_toml(finished / "a.toml"))
        capsys.readouterr()

        code = cli.main(["plot", str(out)])  # an exception here fails the test: no traceback reaches the user
        err = capsys.readouterr().err
        assert code in (0, 2) and len(err.strip().splitlines()) <= 1
        if code == 0:
            df = base.load_study_results(module, config, out)
            for gid in intact_groups:  # every group whose rows are intact is in the report
                assert (df["group_id"] == gid).sum() == 2
            if df.attrs["store_problems"]:
                assert "not used as written" in (out / "report.txt").read_text()

        code = cli.main(["run", "alignment", "--config", str(finished / "a.toml"), "--out", str(out),
                         "--no-progress"])
        err = capsys.readouterr().err
        assert code == 0 and not err.strip(), err
        after = (out / store.RESULTS_FILE).read_bytes().split(b"\n")
        assert all(line in after for line in intact)  # nothing intact was removed
        df = base.load_study_results(module, config, out)
        assert len(df) == len(module.grid(config).runs())  # the resumed sweep is whole again
