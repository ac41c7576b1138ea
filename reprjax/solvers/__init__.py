"""Solvers: ridge over a grid of strengths from one factorisation, Nystrom kernel ridge, the second-layer head."""

from reprjax._lazy import lazy_attributes

_MODULES = ("ridge", "nystrom", "falkon", "head")
_ENTRY_POINTS: dict[str, str] = {}

__getattr__, __dir__, __all__ = lazy_attributes(__name__, _MODULES, _ENTRY_POINTS)
