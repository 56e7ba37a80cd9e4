"""Option definitions shared by the two shells: the ``llmguard`` CLI and the pytest plugin.

One :class:`OptionSpec` describes an option once; :func:`add_cli_options` adds it to an
argparse parser as ``--NAME`` and :func:`add_pytest_options` to pytest as
``--llmguard-NAME`` (plus the ini key ``llmguard_NAME`` where that makes sense). So
``llmguard run suite.yaml --out DIR --set k=v`` and ``pytest --llmguard-suite suite.yaml
--llmguard-out DIR --llmguard-set k=v`` accept the same values with the same meaning.

This module is imported by the pytest11 entry point on every pytest run: it must stay
free of heavy imports.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

PYTEST_PREFIX = "llmguard"


@dataclass(frozen=True)
class OptionSpec:
    """One option of a run, in a form both shells can register.

    :param name: the long name (``out`` → CLI ``--out``, pytest ``--llmguard-out``).
    :param help: one line of help, shared.
    :param multiple: repeatable (``action="append"``); the value is a list.
    :param cli_flags: the CLI's flags when they differ from ``--NAME`` (e.g. ``-p``).
    :param ini: also a pytest ini key ``llmguard_NAME`` (the command line wins).
    """

    name: str
    help: str
    metavar: str | None = None
    default: Any = None
    multiple: bool = False
    cli_flags: tuple[str, ...] = ()
    ini: bool = False

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def pytest_flag(self) -> str:
        return f"--{PYTEST_PREFIX}-{self.name}"

    @property
    def pytest_dest(self) -> str:
        return f"{PYTEST_PREFIX}_{self.dest}"

    def _kwargs(self, dest: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"dest": dest, "help": self.help, "metavar": self.metavar}
        if self.multiple:
            kwargs["action"] = "append"
            kwargs["default"] = []
        return kwargs


OUT = OptionSpec(
    "out",
    "output folder of report.json, junit.xml, summary.md (default: ./llmguard-out)",
    metavar="DIR",
    default="llmguard-out",
    ini=True,
)
SET = OptionSpec(
    "set",
    "override a suite value, e.g. checks.quality.gate.accuracy.min=0.9 (repeatable)",
    metavar="PATH=VALUE",
    multiple=True,
)
PLUGIN = OptionSpec(
    "plugin",
    "load plugin module NAME, or block an installed plugin with no:NAME (repeatable)",
    metavar="NAME",
    multiple=True,
    cli_flags=("-p",),
)

#: Options of a run, in both shells.
RUN_OPTIONS: tuple[OptionSpec, ...] = (OUT, SET, PLUGIN)


def add_cli_options(parser: argparse.ArgumentParser, specs: Iterable[OptionSpec]) -> None:
    """Add ``specs`` to an argparse parser (``--NAME``, or the spec's own ``cli_flags``)."""
    for spec in specs:
        kwargs = spec._kwargs(spec.dest)
        if not spec.multiple:
            kwargs["default"] = spec.default
        parser.add_argument(*(spec.cli_flags or (f"--{spec.name}",)), **kwargs)


def add_pytest_options(group: Any, parser: Any, specs: Iterable[OptionSpec]) -> None:
    """Add ``specs`` to pytest: ``--llmguard-NAME`` in ``group``, ini keys on ``parser``.

    Single-valued options default to ``None`` on the command line so that
    :func:`pytest_value` can tell "not given" from the default and fall back to the ini.
    """
    for spec in specs:
        group.addoption(spec.pytest_flag, **spec._kwargs(spec.pytest_dest))
        if spec.ini:
            parser.addini(spec.pytest_dest, help=spec.help, default="")  # unset: spec.default


def pytest_value(config: Any, spec: OptionSpec) -> Any:
    """The value of ``spec`` in a pytest run: command line, else ini, else the default."""
    value = config.getoption(spec.pytest_dest)
    if value not in (None, []):
        return value
    if spec.ini:
        ini = config.getini(spec.pytest_dest)
        if ini not in (None, "", []):
            return ini
    return [] if spec.multiple else spec.default
