"""Write docs/hooks.md from the docstrings in src/llmguard_ops/hookspecs.py.

    python scripts/hook_docs.py          # rewrite docs/hooks.md
    python scripts/hook_docs.py --check  # exit 1 when docs/hooks.md is out of date

tests/test_docs.py runs the check, so a hook cannot be added, removed or changed
without its reference following.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from llmguard_ops import hookspecs

DOC = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"

HEADER = """# Hook reference

Generated from `src/llmguard_ops/hookspecs.py` by `python scripts/hook_docs.py`; a test
fails when this page and the hook specifications differ. Every hook is called with keyword
arguments; an implementation may accept any subset of them (pluggy's rule).

"""


def hooks() -> list[tuple[str, inspect.Signature, str, dict[str, object]]]:
    out = []
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("llmguard_"):
            continue
        opts = getattr(fn, "llmguard_spec", {}) or {}
        out.append((name, inspect.signature(fn), inspect.getdoc(fn) or "", dict(opts)))
    order = list(vars(hookspecs))
    return sorted(out, key=lambda h: order.index(h[0]))


def render() -> str:
    parts = [HEADER]
    for name, sig, doc, opts in hooks():
        flags = [k for k in ("firstresult", "historic") if opts.get(k)]
        mode = f" *({', '.join(flags)})*" if flags else ""
        args = ", ".join(sig.parameters)
        parts.append(f"## `{name}({args})`{mode}\n\n{doc}\n\n")
    return "".join(parts).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run python scripts/hook_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
