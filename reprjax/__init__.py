"""reprjax: reproduce and extend Damian, Lee & Soltanolkotabi (COLT 2022) in JAX.

The modules, bottom layer first (docs/architecture.md), and the main entry points are attributes of the package,
imported on first use, so ``import reprjax`` stays fast::

    import jax
    import reprjax

    target = reprjax.paper_target(jax.random.key(0), d=32)
    metrics = reprjax.algorithm.run(jax.random.key(1), target, reprjax.Algorithm1Config(n=4096))
    grid = reprjax.Grid(methods=("algorithm1", "entk"), dims=(16,), n=(1024,))
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: The public modules, by layer: maths, problem, network, solvers, methods, sweep, studies, face.
_MODULES = (
    "hermite", "chunking",
    "targets", "data",
    "network",
    "ridge", "kernels", "infinite_kernels", "nystrom",
    "contract", "algorithm", "second_layer", "metrics", "baselines", "multistep", "methods",
    "sweep", "host_threads",
    "experiments",
    "cli", "plotting", "benchmarking", "bench_suite",
)

#: Main entry points, each re-exported from the module named.
_ENTRY_POINTS = {
    "MultiIndexTarget": "targets",
    "paper_target": "targets",
    "DataConfig": "data",
    "sample_dataset": "data",
    "NetworkConfig": "network",
    "Algorithm1Config": "algorithm",
    "Metrics": "contract",
    "train_one_step": "algorithm",
    "KernelConfig": "baselines",
    "METHODS": "methods",
    "get_method": "methods",
    "Grid": "sweep",
    "TargetSpec": "sweep",
    "run_sweep": "sweep",
    "load_results": "sweep",
    "EXPERIMENTS": "experiments",
}

__all__ = ["__version__", *_MODULES, *_ENTRY_POINTS]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _ENTRY_POINTS:
        value = getattr(importlib.import_module(f"{__name__}.{_ENTRY_POINTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
