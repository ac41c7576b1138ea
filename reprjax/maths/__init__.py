"""Maths: normalised Hermite polynomials and Gauss-Hermite quadrature, stratified Gaussian designs, multi-indices,
chunked sums, LAPACK guards."""

from reprjax._lazy import lazy_attributes

_MODULES = ("hermite", "piecewise_quadrature", "stratified", "multi_index", "chunking", "lapack")
_ENTRY_POINTS: dict[str, str] = {}

__getattr__, __dir__, __all__ = lazy_attributes(__name__, _MODULES, _ENTRY_POINTS)
