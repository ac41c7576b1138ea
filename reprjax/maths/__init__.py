"""Maths: normalised Hermite polynomials and Gauss-Hermite quadrature, multi-indices, chunked sums, LAPACK guards."""

from reprjax._lazy import lazy_attributes

_MODULES = ("hermite", "piecewise_quadrature", "multi_index", "chunking", "lapack")
_ENTRY_POINTS: dict[str, str] = {}

__getattr__, __dir__, __all__ = lazy_attributes(__name__, _MODULES, _ENTRY_POINTS)
