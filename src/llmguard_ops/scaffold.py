"""``llmguard new-plugin NAME``: start a plugin distribution from the shipped template."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from .errors import LlmguardError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def placeholders(name: str) -> dict[str, str]:
    return {
        "PLUGIN_MODULE": f"llmguard_{name}",
        "PLUGIN_DIST": f"llmguard-{name.replace('_', '-')}",
        "PLUGIN_NAME": name,
    }


def render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():  # longest keys first is not needed: none is a prefix
        text = text.replace(key, value)
    return text


def new_plugin(name: str, out_dir: Path, folder: str | None = None) -> Path:
    """Copy the template into ``out_dir/llmguard-NAME`` (or ``out_dir/folder``) with the names filled in."""
    if not _NAME.match(name):
        raise LlmguardError(f"plugin name {name!r} must be lower case letters, digits and '_' (e.g. data_quality)")
    values = placeholders(name)
    target = out_dir / (folder or values["PLUGIN_DIST"])
    if target.exists():
        raise LlmguardError(f"{target} already exists")
    root = resources.files("llmguard_ops") / "templates" / "plugin"
    written = []
    stack = [(root, Path())]
    while stack:
        node, rel = stack.pop()
        for child in node.iterdir():
            child_rel = rel / render(child.name, values)
            if child.is_dir():
                stack.append((child, child_rel))
            elif child.name.endswith(".tmpl"):
                dest = target / child_rel.with_suffix("")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(render(child.read_text(encoding="utf-8"), values), encoding="utf-8")
                written.append(dest)
    if not written:
        raise LlmguardError("the plugin template is missing from this installation")
    return target
