"""Names of a package loaded from its submodules on first use (PEP 562).

Every pool worker imports ``amorsize_exec`` and ``amorsize_exec._backends`` on its way to
``_backends._worker``; loading the executor, cost model, machine probe, loky pools and
``importlib.metadata`` there made a cold pool's first answer ~100 ms slower (2 cores).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, submodule_of: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__``: ``submodule_of`` maps each lazy name to
    the relative module that defines it; a loaded name is cached in ``namespace``."""

    def load(name: str) -> object:
        if name not in submodule_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value: object = getattr(importlib.import_module(submodule_of[name], package), name)
        namespace[name] = value
        return value

    def names() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return load, names
