"""The large-d study: a tiny grid runs end to end, its report tables errors against n / d^2 for every d."""

from reprjax import sweep
from reprjax.studies import base, large_d


def test_large_d_study_reports_error_against_n_over_d2_for_every_d(tmp_path):
    config = base.config_from_dict(large_d.Config, dict(dims=[6, 8], n_over_d2=[1.0, 2.0], width=16, seeds=2,
                                                        n_test=256, chunk=32))
    df, _ = base.run_experiment(large_d, config, tmp_path / "out", progress=False)
    assert len(df) == len(large_d.grid(config).runs()) == 8
    summary = large_d.summarise(df, config)
    assert set(summary["curves"]["d"]) == {6, 8} and set(summary["curves"]["n_over_d2"]) == {1.0, 2.0}
    assert (summary["spread"]["max_over_min"] >= 1.0).all()
    text = large_d.report(summary, config)
    assert "rows n / d^2, columns d" in text and "collapse" in text
    assert large_d.plot(df, config, tmp_path / "out")
    assert sweep.load_results(tmp_path / "out").shape[0] == 8


def test_large_d_rejects_an_unknown_target():
    import pytest

    with pytest.raises(base.ConfigError, match="target"):
        large_d.Config(target="staircase")
