"""Methods: the run core (contract, scoring), the registry, and every method a sweep can run, with diagnostics."""

from reprjax._lazy import lazy_attributes

_MODULES = ("contract", "run_config", "scoring", "registry", "algorithm1", "kernel_ridge", "both_layers", "first_layer",
            "first_layer_presets", "spectrum", "overlaps", "sgd_protocols", "sgd_runs",
            "sgd_committee")
_ENTRY_POINTS = {
    "METHODS": "registry",
    "Method": "registry",
    "get_method": "registry",
    "kernel_methods": "registry",
    "register": "registry",
    "Metrics": "contract",
}

__getattr__, __dir__, __all__ = lazy_attributes(__name__, _MODULES, _ENTRY_POINTS)
