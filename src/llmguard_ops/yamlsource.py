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

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists a suite may use."""

MAX_NODES = 100_000
"""Most values a suite may expand to (aliases and merges counted at every use)."""

MAX_INT = 2**63
"""Integers must lie strictly inside (-MAX_INT, MAX_INT)."""

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


def _at(file: str, mark: Any, message: str, key: str | None = None) -> SuiteError:
    line = mark.line + 1 if mark is not None else None
    col = mark.column + 1 if mark is not None else None
    return SuiteError(message, file=file, line=line, column=col, key=key)


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader with limits on nesting depth and on merge-key expansion."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self._file = file
        self._depth = 0
        self._flattening: set[int] = set()

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                # types-PyYAML leaves Parser.peek_event unannotated
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _at(self._file, event.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def flatten_mapping(self, node: Any) -> None:
        if id(node) in self._flattening:
            raise _at(self._file, node.start_mark, "a merge key ('<<') includes the mapping itself")
        self._flattening.add(id(node))
        try:
            super().flatten_mapping(node)
        finally:
            self._flattening.discard(id(node))
        if len(node.value) > MAX_NODES:
            raise _at(
                self._file, node.start_mark, f"merge keys ('<<') expand this mapping to more than {MAX_NODES} entries"
            )


def load_yaml(text: str, file: str, env: Mapping[str, str] | None = None) -> tuple[Any, Any, SourceMap]:
    """Parse ``text`` and return ``(data, raw, source_map)``.

    ``data`` has ``${ENV}`` references resolved; ``raw`` keeps them as written, so that
    reports can show the suite without leaking the environment's secrets.
    """
    env = os.environ if env is None else env
    smap = SourceMap(file=file, lines=text.splitlines())
    try:
        loader = _BoundedLoader(text, file)  # the reader refuses control characters here
    except yaml.reader.ReaderError as exc:
        line, column = _char_position(text, exc.position)
        code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
        raise SuiteError(
            f"invalid YAML: character {code:#06x} is not allowed ({exc.reason})", file=file, line=line, column=column
        ) from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        loader.dispose()
        mark = exc.problem_mark or exc.context_mark
        raise _at(file, mark, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        loader.dispose()
        line, column = _char_position(text, exc.position)
        code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
        raise SuiteError(
            f"invalid YAML: character {code:#06x} is not allowed ({exc.reason})", file=file, line=line, column=column
        ) from None
    except yaml.YAMLError as exc:
        loader.dispose()
        raise _at(file, getattr(exc, "problem_mark", None) or _last_mark(loader), f"invalid YAML: {exc}") from None
    except SuiteError:
        loader.dispose()
        raise
    if node is None:
        loader.dispose()
        raise SuiteError("the suite file is empty", file=file, line=1, column=1)

    count = [0]

    def scalar(n: yaml.Node, path: Path_) -> Any:
        try:
            value = loader.construct_object(n, deep=True)
        except yaml.MarkedYAMLError as exc:
            raise _at(
                file,
                exc.problem_mark or n.start_mark,
                f"invalid YAML: {exc.problem or exc.context}",
                key=format_path(path) or None,
            ) from None
        except (ValueError, OverflowError, TypeError) as exc:  # e.g. 5000 digits, 2026-13-45
            raise _at(file, n.start_mark, f"invalid value: {_short(str(exc))}", key=format_path(path) or None) from None
        if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT < value < MAX_INT:
            raise _at(file, n.start_mark, "integer out of range (must fit in 64 bits)", key=format_path(path) or None)
        return value

    def build(n: yaml.Node, path: Path_, resolve: bool) -> Any:
        count[0] += 1
        if len(path) > MAX_DEPTH:
            raise _at(
                file,
                n.start_mark,
                f"nesting deeper than {MAX_DEPTH} levels (or an alias that contains itself)",
                key=format_path(path[:MAX_DEPTH]) or None,
            )
        if count[0] > MAX_NODES:
            raise _at(
                file,
                n.start_mark,
                f"the document expands to more than {MAX_NODES} values (aliases are counted at every use)",
                key=format_path(path) or None,
            )
        if resolve:
            smap.values[path] = (n.start_mark.line + 1, n.start_mark.column + 1)
        if isinstance(n, yaml.MappingNode):
            try:
                loader.flatten_mapping(n)
            except yaml.MarkedYAMLError as exc:
                raise _at(
                    file,
                    exc.problem_mark or n.start_mark,
                    f"invalid YAML: {exc.problem or exc.context}",
                    key=format_path(path) or None,
                ) from None
            out: dict[Any, Any] = {}
            for k_node, v_node in n.value:
                if not isinstance(k_node, yaml.ScalarNode):
                    raise SuiteError(
                        "mapping keys must be plain scalars",
                        file=file,
                        line=k_node.start_mark.line + 1,
                        column=k_node.start_mark.column + 1,
                    )
                key = scalar(k_node, (*path, str(k_node.value)))
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise SuiteError(
                        "mapping keys must be plain scalars",
                        file=file,
                        line=k_node.start_mark.line + 1,
                        column=k_node.start_mark.column + 1,
                    )
                # keys are names, never YAML 1.1 booleans: `on:` means "on", not True
                key = k_node.value if isinstance(k_node, yaml.ScalarNode) and not isinstance(key, str) else str(key)
                if key in out:
                    raise SuiteError(
                        f"duplicate key '{key}'",
                        file=file,
                        line=k_node.start_mark.line + 1,
                        column=k_node.start_mark.column + 1,
                        key=format_path((*path, key)),
                    )
                if resolve:
                    smap.keys[(*path, key)] = (k_node.start_mark.line + 1, k_node.start_mark.column + 1)
                out[key] = build(v_node, (*path, key), resolve)
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, (*path, i), resolve) for i, item in enumerate(n.value)]
        value = scalar(n, path)
        if resolve and isinstance(value, str) and "${" in value:
            try:
                return interpolate(value, env)
            except KeyError as exc:
                raise smap.error(
                    path,
                    f"environment variable {exc.args[0]} is not set (write ${{{exc.args[0]}:-default}} for a default)",
                ) from None
        return value

    try:
        data = build(node, (), True)
        count[0] = 0
        raw = build(node, (), False)
    finally:
        loader.dispose()
    return data, raw, smap


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _last_mark(loader: Any) -> Any:
    return getattr(loader, "mark", None) or (loader.get_mark() if hasattr(loader, "get_mark") else None)


def _char_position(text: str, index: int) -> tuple[int, int]:
    head = text[:index]
    return head.count("\n") + 1, index - (head.rfind("\n") + 1) + 1


def position_of_offset(data: bytes, offset: int) -> tuple[int, int]:
    """1-based ``(line, column)`` of byte ``offset``; the column counts characters."""
    head = data[:offset]
    line = head.count(b"\n") + 1
    start = head.rfind(b"\n") + 1
    column = len(head[start:].decode("utf-8", errors="replace")) + 1
    return line, column
