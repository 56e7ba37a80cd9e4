"""YAML read with a position for every node, safely, with ``${ENV}`` interpolation.

Only YAML's safe types are constructed (no tags that run code). Each mapping key and
each value gets its ``(line, column)`` (1-based) so errors can point at the offending
text. Duplicate keys are errors rather than a silent last-one-wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import SuiteError

Path_ = tuple[str | int, ...]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class SourceMap:
    """Positions of keys and values in one YAML document, by key path."""

    file: str
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    overridden: set[Path_] = field(default_factory=set)
    lines: list[str] = field(default_factory=list)

    def locate(self, path: Path_, *, prefer_key: bool = False) -> tuple[int | None, int | None]:
        """Position of ``path``; falls back to the nearest parent that has one."""
        probe = tuple(path)
        while True:
            table = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            for t in table:
                if probe in t:
                    return t[probe]
            if not probe:
                return None, None
            probe = probe[:-1]

    def error(self, path: Path_, message: str, *, prefer_key: bool = False) -> SuiteError:
        if tuple(path) in self.overridden:
            return SuiteError(message, file="--set", key=format_path(path))
        line, col = self.locate(path, prefer_key=prefer_key)
        return SuiteError(message, file=self.file, line=line, column=col, key=format_path(path))


def format_path(path: Path_) -> str:
    """``("checks", 2, "gate", "p95_ms")`` → ``checks[2].gate.p95_ms``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; ``$${`` escapes a literal ``${``."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise KeyError(name)

    parts = value.split("$${")
    return "${".join(_ENV.sub(sub, p) for p in parts)


def load_yaml(
    text: str, file: str, env: Mapping[str, str] | None = None
) -> tuple[Any, Any, SourceMap]:
    """Parse ``text`` and return ``(data, raw, source_map)``.

    ``data`` has ``${ENV}`` references resolved; ``raw`` keeps them as written, so that
    reports can show the suite without leaking the environment's secrets.
    """
    env = os.environ if env is None else env
    smap = SourceMap(file=file, lines=text.splitlines())
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise SuiteError(f"invalid YAML: {exc.problem or exc.context}", file=file, line=line, column=col) from None
    if node is None:
        loader.dispose()
        raise SuiteError("the suite file is empty", file=file, line=1, column=1)

    def build(n: yaml.Node, path: Path_, resolve: bool) -> Any:
        if resolve:
            smap.values[path] = (n.start_mark.line + 1, n.start_mark.column + 1)
        if isinstance(n, yaml.MappingNode):
            loader.flatten_mapping(n)
            out: dict[Any, Any] = {}
            for k_node, v_node in n.value:
                key = loader.construct_object(k_node, deep=True)
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise SuiteError(
                        "mapping keys must be plain scalars",
                        file=file, line=k_node.start_mark.line + 1, column=k_node.start_mark.column + 1,
                    )
                # keys are names, never YAML 1.1 booleans: `on:` means "on", not True
                key = k_node.value if isinstance(k_node, yaml.ScalarNode) and not isinstance(key, str) else str(key)
                if key in out:
                    raise SuiteError(
                        f"duplicate key '{key}'",
                        file=file, line=k_node.start_mark.line + 1,
                        column=k_node.start_mark.column + 1, key=format_path((*path, key)),
                    )
                if resolve:
                    smap.keys[(*path, key)] = (k_node.start_mark.line + 1, k_node.start_mark.column + 1)
                out[key] = build(v_node, (*path, key), resolve)
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, (*path, i), resolve) for i, item in enumerate(n.value)]
        value = loader.construct_object(n, deep=True)
        if resolve and isinstance(value, str) and "${" in value:
            try:
                return interpolate(value, env)
            except KeyError as exc:
                raise smap.error(path, f"environment variable {exc.args[0]} is not set "
                                 f"(write ${{{exc.args[0]}:-default}} for a default)") from None
        return value

    try:
        data = build(node, (), True)
        raw = build(node, (), False)
    finally:
        loader.dispose()
    return data, raw, smap
