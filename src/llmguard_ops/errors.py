"""Errors a user can act on.

Every exception here is *handled*: the CLI prints ``str(exc)`` as one line and exits
with status 2, no traceback. Anything else escaping the host is a bug and keeps its
traceback.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable


def printable(text: str) -> str:
    """``text`` with control, format and unassigned characters escaped (``\\x1b``, ``\\u202e``).

    An error message quotes the suite's own text; a newline, an ANSI escape or a bidi
    override in a key must not split the one-line error or rewrite the terminal.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == " " or unicodedata.category(ch)[0] not in ("C", "Z"):
            out.append(ch)
        else:
            out.append(ascii(ch)[1:-1])
    return "".join(out)


class LlmguardError(Exception):
    """Base class of expected, user-facing errors (printed as one line, exit 2)."""


class SuiteError(LlmguardError):
    """A problem in a suite file or its inputs, located as ``file:line:col key.path``."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        super().__init__(self.format())

    def format(self) -> str:
        where = self.file or "<suite>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        key = f" {printable(self.key)}:" if self.key else ""
        return f"{where}{key} {printable(self.message)}"


class PluginError(LlmguardError):
    """A plugin is broken or two plugins collide."""


class ArtifactError(LlmguardError):
    """A model or dataset cannot be found or loaded."""


class CheckSkipped(Exception):
    """Raised by a check to report SKIP (e.g. a CUDA check on a machine without CUDA)."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
