"""The one reader of the docs' fenced code blocks, for every test that checks an example.

``code_blocks`` returns each fenced block of a Markdown file (or of one of its ``## ``
sections) whose info string is one of ``langs``, its text exactly as between the fences
(with the final newline), and where it starts, so a failing test names ``docs/x.md:42``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: every Markdown file the docs tests read: the README and docs/ (examples' pages included)
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]


@dataclass(frozen=True)
class CodeBlock:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str  # as written after the fence
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO).as_posix()}:{self.line}"


def _lines(path: Path, section: str | None) -> tuple[list[str], int]:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if section is None:
        return lines, 0
    starts = [i for i, line in enumerate(lines) if line.startswith(f"## {section}")]
    if not starts:
        raise AssertionError(f"{path.relative_to(REPO)} has no section '## {section}'")
    start = starts[0]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end], start


def code_blocks(path: Path, *langs: str, section: str | None = None) -> list[CodeBlock]:
    """The fenced blocks of ``path`` whose info string is exactly one of ``langs``."""
    lines, offset = _lines(path, section)
    blocks: list[CodeBlock] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        lang = lines[i][3:].strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise AssertionError(f"{path.relative_to(REPO)}:{offset + i + 1}: code block never closed")
        if lang in langs:
            blocks.append(CodeBlock(path, offset + i + 1, lang, "".join(lines[i + 1 : end])))
        i = end + 1
    return blocks


def texts(path: Path, *langs: str, section: str | None = None) -> list[str]:
    """Just the blocks' texts (see :func:`code_blocks`)."""
    return [b.text for b in code_blocks(path, *langs, section=section)]
