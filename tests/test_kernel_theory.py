"""Kernel plateaus from Hermite energies (reprjax.kernels.theory) and the study's use of them."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax.kernels import theory as kernel_theory
from reprjax.problem import targets
from reprjax.studies import sample_complexity


def test_paper_target_plateaus_are_one_then_half_then_zero():
    target = targets.paper_target(jax.random.key(0), 16)
    assert kernel_theory.energy_by_degree(target) == pytest.approx({2: 0.5, 4: 0.5})
    rows = kernel_theory.kernel_plateaus(target)
    assert [r["error"] for r in rows] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.0])
    assert [(r["n_low"], r["n_high"]) for r in rows[2:4]] == [(256.0, 4096.0), (4096.0, 65536.0)]


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**16), p=st.integers(3, 5))
def test_energies_sum_to_the_second_moment_and_plateaus_decrease(seed, p):
    target = targets.random_polynomial(jax.random.key(seed), d=8, r=2, p=p)
    energy = kernel_theory.energy_by_degree(target)
    assert sum(energy.values()) == pytest.approx(float(target.second_moment()), rel=1e-5)
    errors = [r["error"] for r in kernel_theory.kernel_plateaus(target)]
    assert errors[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b - 1e-12 for a, b in zip(errors, errors[1:]))


def test_study_fits_kernels_at_their_own_threshold():
    config = sample_complexity.Config(dims=(8, 12), methods=("algorithm1", "ntk_infinite"), seeds=2,
                                      kernel_threshold=0.3, bootstrap=20)
    rows = []
    for d in (8, 12):
        for n in (100, 1000, 10_000, 100_000):
            for seed in range(2):
                # kernel curve crosses 0.3 near n = d^3 / 4; the network one crosses 0.25 near n = 2 d^2
                rows.append(dict(method="ntk_infinite", d=d, n=n, seed=seed, status="ok",
                                 test_nmse=0.5 * np.exp(-n / (d**3 / 2)) + 0.2 + 0.001 * seed))
                rows.append(dict(method="algorithm1", d=d, n=n, seed=seed, status="ok",
                                 test_nmse=float(np.exp(-n / (2 * d**2))) + 0.001 * seed))
    summary = sample_complexity.summarise(pd.DataFrame(rows), config)
    thresholds = dict(zip(summary["n_star"]["method"], summary["n_star"]["threshold"]))
    assert thresholds == {"algorithm1": 0.25, "ntk_infinite": 0.3}
    assert set(summary["plateaus"]) == {8, 12}
    text = sample_complexity.report(summary, config)
    assert "0.3 for ntk_infinite" in text and "kernel plateaus" in text
