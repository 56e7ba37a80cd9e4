"""Building the plugin manager and the registry, one plugin at a time.

Plugins come from three places, in this order: the host's builtin plugins (an explicit
list), the ``llmguard`` entry-point group, and modules named with ``-p MODULE``. Each
entry point is loaded and registered on its own: one that fails to import, declares
an unknown hook, or raises while registering is recorded as a
:class:`~llmguard_ops.registry.PluginFailure` and the others still load. ``-p
no:NAME`` (or ``LLMGUARD_DISABLE_PLUGINS=NAME,...``) blocks one by name.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import LlmguardError, PluginError
from .registry import PluginFailure, Registry

ENTRY_POINT_GROUP = "llmguard"

#: Builtin plugins, in load order. They use the public hooks like any other plugin.
#: The Markdown reporter stays last among reporters: it links the files written before it;
#: the model card comes before the HTML page, which lists the card's digest.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "llmguard_ops.builtin",
    "llmguard_ops.reporters.junit",
    "llmguard_ops.reporters.model_card",
    "llmguard_ops.reporters.compliance",
    "llmguard_ops.reporters.html",
    "llmguard_ops.reporters.run_history",
    "llmguard_ops.reporters.markdown",
    "llmguard_ops.reporters.cyclonedx",
)
#: Builtins that cannot be blocked (the loaders every suite needs); the reporters can be,
#: e.g. ``-p no:llmguard_ops.reporters.html``.
ESSENTIAL_PLUGINS: tuple[str, ...] = ("llmguard_ops.builtin",)


def _version() -> str | None:
    try:
        return metadata.version("llmguard-ops")
    except metadata.PackageNotFoundError:
        return None


def parse_plugin_options(options: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``-p`` values into (modules to load, names to block)."""
    load, block = [], []
    for opt in options:
        if opt.startswith("no:"):
            block.append(opt[3:])
        else:
            load.append(opt)
    env = os.environ.get("LLMGUARD_DISABLE_PLUGINS", "")
    block += [n.strip() for n in env.split(",") if n.strip()]
    return load, block


@dataclass
class PluginCall:
    """One plugin's call of a hook made by :meth:`PluginHost.call_each`."""

    plugin: str
    result: Any = None
    error: Exception | None = None


class PluginHost:
    """The plugin manager plus what was loaded, what failed, and who provided what."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.failures: list[PluginFailure] = []
        self.provenance: dict[str, tuple[str | None, str | None]] = {}
        self._registry: Registry | None = None

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def register(self, plugin: Any, name: str, dist: str | None = None, version: str | None = None) -> bool:
        """Register one plugin in isolation; on any problem record it and return False."""
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            self.failures.append(PluginFailure(name, dist, version, f"{type(exc).__name__}: {exc}"))
            return False
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            self.failures.append(PluginFailure(name, dist, version, str(exc)))
            return False
        self.provenance[name] = (dist, version)
        self._registry = None
        return True

    def call_each(self, hook_name: str, make_kwargs: Callable[[], dict[str, Any]]) -> list[PluginCall]:
        """Call ``hook_name`` through pluggy one plugin at a time, in registration order.

        Each call goes through ``pm.subset_hook_caller`` with every other implementing
        plugin removed, so pluggy's tracing and hook-call monitoring (the testing kit's
        ``hook_names``) see it, and one plugin raising is recorded in its
        :class:`PluginCall` while the others still run. ``make_kwargs()`` is called
        afresh for every plugin (each gets its own copies).
        """
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        plugins = [impl.plugin for impl in impls]
        calls = []
        for impl in impls:
            others = [p for p in plugins if p is not impl.plugin]
            caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
            try:
                results = caller(**make_kwargs())
            except Exception as exc:
                calls.append(PluginCall(impl.plugin_name, error=exc))
                continue
            calls.append(PluginCall(impl.plugin_name, result=results[0] if results else None))
        return calls

    def registry(self) -> Registry:
        """Collect every plugin's registrations (cached until another plugin registers)."""
        if self._registry is None:
            self._registry = self._collect()
        return self._registry

    def _collect(self) -> Registry:
        reg = Registry(failures=list(self.failures))
        hooks: list[tuple[str, str, Callable[..., None]]] = [
            ("llmguard_register_checks", "register", reg.add_check),
            ("llmguard_register_model_loaders", "register", reg.add_model_loader),
            ("llmguard_register_dataset_loaders", "register", reg.add_dataset_loader),
            ("llmguard_register_reporters", "register", reg.add_reporter),
            ("llmguard_register_executors", "register", reg.add_executor),
            ("llmguard_register_safety_probe_sets", "register", reg.add_extension("safety probe set")),
            ("llmguard_register_safety_converters", "register", reg.add_extension("safety converter")),
            ("llmguard_register_safety_detectors", "register", reg.add_extension("safety detector")),
        ]
        broken: set[str] = set()
        for name, (_dist, version) in self.provenance.items():
            reg.plugins[name] = version
        for hook_name, _arg, add in hooks:
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():  # registration order
                plugin = impl.plugin_name
                if plugin in broken:
                    continue
                dist, version = self.provenance.get(plugin, (None, None))
                items: list[Any] = []
                try:
                    impl.function(**{a: items.append for a in impl.argnames})
                    for item in items:
                        add(item, plugin, version)
                except PluginError as exc:
                    # a collision names both plugins; the second one loses its items
                    reg.failures.append(PluginFailure(plugin, dist, version, str(exc)))
                    broken.add(plugin)
                except Exception as exc:
                    reg.failures.append(PluginFailure(plugin, dist, version, f"{type(exc).__name__}: {exc}"))
                    broken.add(plugin)
        return reg


def get_plugin_manager(
    *,
    entry_points: bool = True,
    plugins: Iterable[str] = (),
    blocked: Iterable[str] = (),
    objects: Iterable[tuple[str, Any]] = (),
) -> PluginHost:
    """Build a fresh plugin host (never at import time; each run and test gets its own).

    :param entry_points: load the ``llmguard`` entry-point group.
    :param plugins: extra module names to load as plugins (``-p MODULE``).
    :param blocked: plugin names not to load (``-p no:NAME``).
    :param objects: ``(name, plugin object)`` pairs registered directly (tests, fixtures).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm)
    blocked = set(blocked)
    own = _version()
    for module in BUILTIN_PLUGINS:
        if module in blocked and module not in ESSENTIAL_PLUGINS:
            continue
        host.register(importlib.import_module(module), name=module, dist="llmguard-ops", version=own)
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in blocked or ep.value in blocked:
                continue
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            try:
                plugin = ep.load()
            except Exception as exc:
                host.failures.append(PluginFailure(ep.name, dist, version, f"{type(exc).__name__}: {exc}"))
                continue
            if pm.is_registered(plugin):
                continue
            host.register(plugin, name=ep.name, dist=dist, version=version)
    for module in plugins:
        if module in blocked:
            continue
        try:
            plugin = importlib.import_module(module)
        except Exception as exc:
            raise LlmguardError(f"cannot import plugin module '{module}': {type(exc).__name__}: {exc}") from None
        host.register(plugin, name=module, dist=None, version=None)
    for name, obj in objects:
        host.register(obj, name=name)
    return host
