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
