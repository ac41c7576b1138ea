"""reprjax: reproduce and extend Damian, Lee & Soltanolkotabi (COLT 2022) in JAX.

The package is its layers, bottom first (docs/architecture.md): ``maths`` -> ``problem`` -> ``network`` ->
``solvers`` | ``kernels`` -> ``methods`` -> ``sweep`` -> ``report`` -> ``studies`` -> ``bench`` -> ``cli``.
Layers, their modules and the main entry points are attributes of the package, imported on first use, so
``import reprjax`` loads no jax::

    import jax
    import reprjax

    target = reprjax.paper_target(jax.random.key(0), d=32)
    metrics = reprjax.methods.algorithm1.run(jax.random.key(1), target, reprjax.Algorithm1Config(n=4096))
    grid = reprjax.Grid(methods=("algorithm1", "entk"), dims=(16,), n=(1024,))
"""

from __future__ import annotations

from reprjax._lazy import lazy_attributes

__version__ = "0.1.0"

#: The layers, bottom first.
_MODULES = ("maths", "problem", "network", "solvers", "kernels", "methods", "sweep", "report", "studies", "bench",
            "cli")

#: Main entry points, each re-exported from the module named.
_ENTRY_POINTS = {
    "MultiIndexTarget": "problem.targets",
    "paper_target": "problem.targets",
    "DataConfig": "problem.data",
    "sample_dataset": "problem.data",
    "NetworkConfig": "network",
    "Algorithm1Config": "methods.algorithm1",
    "Metrics": "methods.contract",
    "train_one_step": "methods.algorithm1",
    "KernelConfig": "methods.kernel_ridge",
    "METHODS": "methods.registry",
    "get_method": "methods.registry",
    "Grid": "sweep",
    "TargetSpec": "sweep",
    "run_sweep": "sweep",
    "load_results": "sweep",
    "STUDIES": "studies",
}

__getattr__, __dir__, _names = lazy_attributes(__name__, _MODULES, _ENTRY_POINTS)
__all__ = ["__version__", *_names]
