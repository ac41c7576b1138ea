"""Package attributes imported on first use, so that ``import reprjax`` (or one of its layers) loads no jax."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_attributes(
    package: str, modules: Sequence[str], entry_points: Mapping[str, str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for a package exposing ``modules`` and ``entry_points`` lazily.

    Args:
        package: the package's ``__name__``.
        modules: submodule names, imported on first attribute access.
        entry_points: attribute name -> submodule (relative to ``package``) that defines it.
    """
    entry_points = dict(entry_points or {})
    names = [*modules, *entry_points]

    def __getattr__(name: str) -> Any:
        if name in modules:
            return importlib.import_module(f"{package}.{name}")
        if name in entry_points:
            return getattr(importlib.import_module(f"{package}.{entry_points[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(names) | set(vars(sys.modules[package])))

    return __getattr__, __dir__, names
