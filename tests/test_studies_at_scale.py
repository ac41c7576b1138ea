"""The studies at the sizes their presets give (examples/*.toml): minutes to hours on 2 CPU cores, so marked `slow`
and run with `pytest -m slow`. Their small CI variants are the tiny configs of tests/test_experiments_cli.py, which run
every option of every study end to end."""

import re
from pathlib import Path

import pytest

from reprjax import cli, sweep
from reprjax.studies import STUDIES

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _presets() -> list[tuple[str, Path]]:
    """(study, preset) for every example config whose first line names the study it runs."""
    found = []
    for path in sorted(EXAMPLES.glob("*.toml")):
        command = re.search(r"reprjax run ([a-z0-9-]+)", path.read_text().splitlines()[0])
        if command:
            found.append((command.group(1), path))
    return found


def test_every_study_has_a_preset_that_names_it():
    named = {study for study, _ in _presets()}
    assert set(STUDIES) <= named, f"studies without an examples/*.toml preset: {sorted(set(STUDIES) - named)}"


@pytest.mark.slow
@pytest.mark.parametrize("study,preset", _presets(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_each_preset_runs_to_its_report(study, preset, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["run", study, "--config", str(preset), "--out", str(out), "--no-progress"]) == 0
    df = sweep.load_results(out)
    assert len(df) and (df["status"] == "ok").any()
    assert (out / "report.txt").read_text().strip()
