"""Secrets never leave a run: one redactor applied to everything a run writes or prints.

The secrets of a run are

* every value a suite interpolates with ``${VAR}`` (or ``${VAR:-default}``), and
* every environment value whose name looks secret (``*KEY*``, ``*TOKEN*``,
  ``*SECRET*``, ``*PASSWORD*``, ``*CREDENTIAL*``, ...),

when the value is long enough to matter (:data:`MIN_LENGTH` characters) and does not
name an existing file or folder (a path such as ``$HOME`` or the signing key's location
is not a secret, and redacting it would garble every path in a report).

:func:`for_run` builds the redactor once per run; the runner applies it to each
check's error, traceback, warnings and details as the result is built, and to the
whole report before any file, reporter, hook or attestation sees it; the CLI applies it
to every line it prints (and the supervising parent to the child's stdout and stderr).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MASK = "[REDACTED]"
MIN_LENGTH = 6
SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION|"
    r"DSN|WEBHOOK|SIGNATURE",
    re.IGNORECASE,
)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")


def _is_path(value: str) -> bool:
    if os.sep not in value and "/" not in value:
        return False
    try:
        return Path(value).expanduser().exists()
    except (OSError, ValueError):
        return False


def _worth_hiding(value: str) -> bool:
    value = value.strip()
    return len(value) >= MIN_LENGTH and not _is_path(value)


class Redactor:
    """Replaces every known secret value in strings (and nested data) by :data:`MASK`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        found: set[str] = set()
        for value in secrets:
            for variant in (value, value.strip()):
                if _worth_hiding(variant):
                    found.add(variant)
        # longest first, so a secret containing another is masked whole
        self.secrets = sorted(found, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in self.secrets)) if self.secrets else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        """``value`` with every secret masked."""
        if self._pattern is None or not isinstance(value, str):
            return value
        return self._pattern.sub(MASK, value)

    def data(self, value: Any) -> Any:
        """A copy of JSON-like ``value`` with every string (keys included) masked."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def environment_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look secret."""
    env = os.environ if env is None else env
    return [v for k, v in env.items() if SECRET_NAME.search(k) and v]


def referenced_secrets(text: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment variables a suite's text interpolates with ``${VAR}``."""
    env = os.environ if env is None else env
    return [env[name] for name in _REFERENCE.findall(text) if env.get(name)]


def for_text(suite_text: str = "", env: Mapping[str, str] | None = None) -> Redactor:
    """The redactor of a run of the suite whose file holds ``suite_text``."""
    return Redactor([*environment_secrets(env), *referenced_secrets(suite_text, env)])


def for_suite_file(path: str | Path, env: Mapping[str, str] | None = None) -> Redactor:
    """As :func:`for_text`, reading the suite file (an unreadable file gives env secrets only)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return for_text(text, env)
