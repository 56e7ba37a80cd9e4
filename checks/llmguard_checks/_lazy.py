"""Imports deferred to first use: the one way a family keeps registration light.

Every ``llmguard`` command imports every plugin's entry point, so a family's
``__init__.py`` only registers. It names its run functions with :func:`lazy_function`
(the module holding the run, usually ``_check.py``, loads on the first call), and a module
loaded at registration that needs scipy.stats (over a second to import) binds it with
:func:`lazy_module`, so the cost is paid only when a check runs.
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


class _LazyFunction:
    """``module.name``, imported when first called.

    It carries the target's ``__module__`` and ``__name__`` (the host tells a check's own
    ``CheckSkipped`` by the run's module) and holds only strings, so it pickles for Ray.
    """

    def __init__(self, module: str, name: str) -> None:
        self.__module__ = module
        self.__name__ = self.__qualname__ = name
        self.__doc__ = f"``{module}.{name}``, imported on the first call."

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(self.__module__), self.__name__)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lazy {self.__module__}.{self.__name__}>"


def lazy_function(module: str, name: str) -> Any:
    """A stand-in for ``from module import name`` that imports on the first call."""
    return _LazyFunction(module, name)
