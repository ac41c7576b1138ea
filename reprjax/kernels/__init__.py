"""Kernels: the empirical NTK of the two-layer net, infinite-width NTK / NNGP, kernel theory (plateaus, learning
curves)."""

from reprjax._lazy import lazy_attributes

_MODULES = ("empirical", "infinite", "theory", "inputs", "learning_curve")
_ENTRY_POINTS: dict[str, str] = {}

__getattr__, __dir__, __all__ = lazy_attributes(__name__, _MODULES, _ENTRY_POINTS)
