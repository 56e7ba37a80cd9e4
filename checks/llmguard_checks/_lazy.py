"""Modules imported on first attribute access.

Every ``llmguard`` command imports every plugin's entry point; a check module that
needs scipy.stats (over a second to import) binds it through :func:`lazy_module` so the
cost is paid only when the check runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


def lazy_module(name: str) -> Any:
    """A stand-in for ``import name`` that imports on first use."""
    return _LazyModule(name)
