"""Output directories: one sweep per directory, no row ever lost, --overwrite replaces only what reprjax wrote."""

import json

import pytest

from reprjax import cli, sweep
from reprjax.sweep import outdir

ALIGNMENT = "dims = [6]\nn_over_d2 = [1.0]\nwidth = 16\nseeds = 1\nn_test = 64\n"
INFO = ("dims = [6]\nexponents = [2]\ninclude_paper = false\ninclude_giant_step = false\nn_over_d2 = [1.0]\n"
        "preprocess = [true]\nwidth = 16\nseeds = 1\nn_test = 64\n")


def _main(*args):
    return cli.main([*map(str, args), *(["--no-progress"] if args[0] != "plot" else [])])


@pytest.fixture
def configs(tmp_path):
    (tmp_path / "a.toml").write_text(ALIGNMENT)
    (tmp_path / "i.toml").write_text(INFO)
    return tmp_path / "a.toml", tmp_path / "i.toml"


def test_commands_sharing_a_directory_never_lose_a_row(tmp_path, configs, capsys):
    a, i = configs
    out = tmp_path / "out"
    assert _main("run", "alignment", "--config", a, "--out", out) == 0
    rows = (out / sweep.RESULTS_FILE).read_bytes()
    assert rows
    attempts = [
        ["run", "information-exponent", "--config", i, "--out", out],  # another experiment
        ["run", "alignment", "--config", a, "--seeds", "2", "--out", out],  # the same one, another grid
        ["demo", "--out", out],  # the demo no longer replaces a directory silently
    ]
    for args in attempts:
        assert _main(*args) == 2
        assert "different configuration" in capsys.readouterr().err
        assert (out / sweep.RESULTS_FILE).read_bytes() == rows
    with outdir.lock(out):  # a second command while one is writing is refused, not interleaved
        assert _main("run", "alignment", "--config", a, "--out", out) == 2
        assert "another reprjax command" in capsys.readouterr().err
    assert _main("plot", out) == 0 and _main("run", "alignment", "--config", a, "--out", out) == 0
    assert (out / sweep.RESULTS_FILE).read_bytes() == rows  # resumed: nothing re-run, nothing lost


def test_overwrite_replaces_every_output_reprjax_wrote_and_nothing_else(tmp_path, configs, capsys):
    a, i = configs
    out = tmp_path / "out"
    assert _main("run", "alignment", "--config", a, "--out", out) == 0
    old = set(json.loads((out / outdir.OUTPUTS_FILE).read_text()))
    assert "alignment_vs_n_over_d2.png" in old and "report.txt" in old
    (out / "notes.txt").write_text("mine")
    (out / "my_figure.png").write_text("mine too")
    assert _main("run", "information-exponent", "--config", i, "--out", out, "--overwrite") == 0
    new = set(json.loads((out / outdir.OUTPUTS_FILE).read_text()))
    assert not (out / "alignment_vs_n_over_d2.png").exists() and not (out / "alignment_vs_n_over_d2.pdf").exists()
    assert all((out / name).exists() for name in new)
    assert (out / "notes.txt").read_text() == "mine" and (out / "my_figure.png").read_text() == "mine too"
    df = sweep.load_results(out)
    assert set(df["target"]) == {"single_index,k=2"} and len(df) == 1  # only the new sweep's rows
    assert "one step" in (out / "report.txt").read_text()


def test_results_without_a_manifest_are_refused_whatever_the_flags_a_corrupt_manifest_unless_overwrite(
        tmp_path, configs, capsys):
    a, _ = configs
    out = tmp_path / "out"
    out.mkdir()
    (out / sweep.RESULTS_FILE).write_text('{"some": "row"}\n')
    for flags in ([], ["--overwrite"]):  # reprjax did not write them: never replaced, whatever the flags
        assert _main("run", "alignment", "--config", a, "--out", out, *flags) == 2
        err = capsys.readouterr().err
        assert "without a sweep.json" in err and len(err.strip().splitlines()) == 1
        assert (out / sweep.RESULTS_FILE).read_text() == '{"some": "row"}\n'
    (out / sweep.MANIFEST_FILE).write_text("{torn")
    assert _main("run", "alignment", "--config", a, "--out", out) == 2
    assert str(out / sweep.MANIFEST_FILE) in capsys.readouterr().err
    assert _main("run", "alignment", "--config", a, "--out", out, "--overwrite") == 0
    assert len(sweep.load_results(out)) == 1


def test_a_directory_reprjax_did_not_make_is_refused_and_left_as_it_was(tmp_path, configs, capsys):
    a, _ = configs
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.txt").write_text("my report")
    (out / "curves.csv").write_text("my,curves")
    for flags in ([], ["--overwrite"]):
        assert _main("run", "alignment", "--config", a, "--out", out, *flags) == 2
        err = capsys.readouterr().err
        assert "curves.csv, report.txt" in err and "did not write" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["curves.csv", "report.txt"]
    assert (out / "report.txt").read_text() == "my report" and (out / "curves.csv").read_text() == "my,curves"


def test_an_output_changed_or_replaced_by_the_user_is_never_overwritten_or_removed(tmp_path, configs, capsys):
    a, i = configs
    out = tmp_path / "out"
    assert _main("run", "alignment", "--config", a, "--out", out) == 0
    (out / "report.txt").write_text("my notes on the report")
    capsys.readouterr()
    assert _main("plot", out) == 2  # the report changed since reprjax wrote it: refused, naming it
    err = capsys.readouterr().err
    assert str(out / "report.txt") in err and len(err.strip().splitlines()) == 1
    assert (out / "report.txt").read_text() == "my notes on the report"
    assert not list(out.glob(outdir.STAGING_PREFIX + "*"))  # the staging folder is gone
    assert _main("run", "information-exponent", "--config", i, "--out", out, "--overwrite") == 2
    assert "report.txt" in capsys.readouterr().err  # the sweep ran; its report is refused, the user's file kept
    assert (out / "report.txt").read_text() == "my notes on the report"
    assert len(sweep.load_results(out)) == 1
    (out / "report.txt").rename(tmp_path / "notes.txt")
    assert _main("plot", out) == 0 and "one step" in (out / "report.txt").read_text()
    recorded = json.loads((out / outdir.OUTPUTS_FILE).read_text())
    assert all(outdir.digest(out / name) in digests for name, digests in recorded.items())


def test_retry_failed_reruns_the_failed_groups_from_the_command_line(tmp_path, configs, capsys):
    a, _ = configs
    out = tmp_path / "out"
    assert _main("run", "alignment", "--config", a, "--out", out) == 0
    path = out / sweep.RESULTS_FILE
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(dict(r, status="failed", error="injected")) + "\n" for r in rows))
    capsys.readouterr()
    assert _main("run", "alignment", "--config", a, "--out", out) == 0
    assert "0 groups run" in capsys.readouterr().out
    assert _main("run", "alignment", "--config", a, "--out", out, "--retry-failed") == 0
    assert "1 groups run" in capsys.readouterr().out
    assert (sweep.load_results(out)["status"] == "ok").all()


def test_an_interrupted_sweep_exits_130_in_one_line_and_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    from reprjax.sweep import engine

    (tmp_path / "m.toml").write_text(ALIGNMENT.replace("n_over_d2 = [1.0]", "n_over_d2 = [1.0, 4.0]"))
    out = tmp_path / "out"
    real, calls = engine.run_group, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:  # ^C while the second group runs
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(engine, "run_group", interrupted)
    assert _main("run", "alignment", "--config", tmp_path / "m.toml", "--out", out) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and len(err.strip().splitlines()) == 1
    assert len(sweep.load_results(out)) == 1  # the first group is on disk
    monkeypatch.setattr(engine, "run_group", real)
    assert _main("run", "alignment", "--config", tmp_path / "m.toml", "--out", out) == 0
    assert "1 groups run, 1 already done" in capsys.readouterr().out


def test_a_record_of_names_without_digests_claims_nothing(tmp_path, configs, capsys):
    """An older reprjax recorded only names: a file of such a name may be the user's by now, so it is neither
    overwritten nor removed, and the refusal names it."""
    a, _ = configs
    out = tmp_path / "out"
    assert _main("run", "alignment", "--config", a, "--out", out) == 0
    (out / "report.txt").write_text("the user's own file under a recorded name")
    (out / outdir.OUTPUTS_FILE).write_text(json.dumps(["report.txt"]))
    capsys.readouterr()
    assert _main("plot", out) == 2
    assert str(out / "report.txt") in capsys.readouterr().err
    assert (out / "report.txt").read_text() == "the user's own file under a recorded name"
    outdir.remove_outputs(out)
    assert (out / "report.txt").read_text() == "the user's own file under a recorded name"
