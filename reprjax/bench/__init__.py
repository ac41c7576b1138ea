"""Benchmarks: the harness (timing, peak memory, roofline) and the suite of benchmarks it runs."""

from reprjax._lazy import lazy_attributes

_MODULES = ("harness", "suite", "kernel_scale", "first_layer_training", "algorithm1_large_d", "entk_forms", "flops")
_ENTRY_POINTS: dict[str, str] = {}

__getattr__, __dir__, __all__ = lazy_attributes(__name__, _MODULES, _ENTRY_POINTS)
