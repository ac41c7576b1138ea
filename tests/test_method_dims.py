"""Per-method dimensions: kernels at the d their solvers reach, the network at larger d, in one grid and study."""

import pytest

from reprjax import sweep
from reprjax.studies import sample_complexity


def test_method_dims_restrict_each_method_to_its_own_dimensions():
    grid = sweep.Grid(methods=("algorithm1", "ntk_infinite"), dims=(16, 32), n=(64,), widths=(8,), seeds=1,
                      method_dims=(("ntk_infinite", (8, 12)),))
    dims = {(r["method"], r["d"]) for r in grid.runs()}
    assert dims == {("algorithm1", 16), ("algorithm1", 32), ("ntk_infinite", 8), ("ntk_infinite", 12)}
    assert grid.all_dims == (8, 12, 16, 32)


def test_method_dims_for_a_method_outside_the_grid_is_refused():
    grid = sweep.Grid(methods=("algorithm1",), dims=(16,), n=(64,), widths=(8,), seeds=1,
                      method_dims=(("entk", (8,)),))
    with pytest.raises(ValueError, match="method_dims"):
        grid.runs()


def test_sample_complexity_kernel_dims_send_kernels_to_their_own_dims():
    config = sample_complexity.Config(dims=(16, 32), kernel_dims=(8, 10), n_over_d2=(1.0,),
                                      methods=("algorithm1", "ntk_infinite"), width=8, seeds=1)
    runs = sample_complexity.grid(config).runs()
    assert {r["d"] for r in runs if r["method"] == "ntk_infinite"} == {8, 10}
    assert {r["d"] for r in runs if r["method"] == "algorithm1"} == {16, 32}
    assert config.kernel_dim_list == (8, 10)


def test_sample_complexity_kernel_grid_of_sample_counts_is_used_where_kernels_run():
    config = sample_complexity.Config(dims=(16, 32), kernel_dims=(8, 16), n_over_d2=(1.0, 2.0),
                                      kernel_n_over_d2=(4.0, 64.0), methods=("algorithm1", "ntk_infinite"),
                                      width=8, seeds=1, kernel_n_max=100_000)
    assert config.sample_counts(32) == [1024, 2048]        # networks only
    assert config.sample_counts(8) == [256, 4096]          # kernels only
    assert config.sample_counts(16) == [256, 512, 1024, 16384]  # both: the union
    with pytest.raises(ValueError, match="kernel_n_over_d2"):
        sample_complexity.Config(kernel_n_over_d2=(-1.0,))


def test_pair_dims_send_one_method_on_one_target_to_its_own_dimensions():
    he2, he3 = sweep.TargetSpec.of("single_index", k=2), sweep.TargetSpec.of("single_index", k=3)
    grid = sweep.Grid(methods=("algorithm1", "ntk_infinite"), targets=(he2, he3), dims=(16, 32), n=(64,),
                      widths=(8,), seeds=1, method_dims=(("ntk_infinite", (8, 12)),),
                      pair_dims=(("ntk_infinite", he3.label(), (10,)), ("algorithm1", he2.label(), (24, 16))))
    dims = {(r["method"], r["target"], r["d"]) for r in grid.runs()}
    assert dims == {("algorithm1", he2.label(), 24), ("algorithm1", he2.label(), 16),
                    ("algorithm1", he3.label(), 16), ("algorithm1", he3.label(), 32),
                    ("ntk_infinite", he2.label(), 8), ("ntk_infinite", he2.label(), 12),
                    ("ntk_infinite", he3.label(), 10)}
    assert grid.all_dims == (8, 10, 12, 16, 24, 32)


@pytest.mark.parametrize("pair, match", [(("entk", "single_index,k=2", (8,)), "not a method"),
                                         (("algorithm1", "single_index,k=5", (8,)), "not a target"),
                                         (("algorithm1", "single_index,k=2", (8, 8)), "repeat"),
                                         (("algorithm1", "single_index,k=2", ()), "at least one")])
def test_pair_dims_out_of_the_grid_or_malformed_are_refused(pair, match):
    grid = sweep.Grid(methods=("algorithm1",), targets=(sweep.TargetSpec.of("single_index", k=2),), dims=(16,),
                      n=(64,), widths=(8,), seeds=1, pair_dims=(pair,))
    with pytest.raises(ValueError, match=match):
        grid.runs()


def test_pair_dims_named_twice_are_refused():
    label = sweep.TargetSpec.of("single_index", k=2).label()
    grid = sweep.Grid(methods=("algorithm1",), targets=(sweep.TargetSpec.of("single_index", k=2),), dims=(16,),
                      n=(64,), widths=(8,), seeds=1,
                      pair_dims=(("algorithm1", label, (8,)), ("algorithm1", label, (12,))))
    with pytest.raises(ValueError, match="twice"):
        grid.runs()
