"""Reports: tables and statistics from result rows (curves, n*, exponents with intervals) and the figures drawn from
them."""

from reprjax._lazy import lazy_attributes

_MODULES = ("tables", "crossings", "exponents", "collapse", "exponent_text", "figures", "kernel_figures",
            "dynamics_figures", "sgd_figures")
_ENTRY_POINTS: dict[str, str] = {}

__getattr__, __dir__, __all__ = lazy_attributes(__name__, _MODULES, _ENTRY_POINTS)
