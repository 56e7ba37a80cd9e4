"""A hypothesis backend whose draws depend on the seed alone.

Hypothesis' own provider now and then (5 % of draws) injects a constant harvested from
the source of the *local modules loaded in the process*. Which modules are loaded
differs between a CLI run, a pytest session and a notebook, so the same seed could
give different examples. This provider is hypothesis' own with that injection turned
off; it is registered under the name ``llmguard-seeded`` through hypothesis' documented
alternative-backend table and selected per run with ``settings(backend=...)``, so no
other hypothesis user in the process is affected.
"""

from __future__ import annotations

from typing import Any

from hypothesis.internal.conjecture.providers import AVAILABLE_PROVIDERS, HypothesisProvider

BACKEND = "llmguard-seeded"


class SeededProvider(HypothesisProvider):
    """Hypothesis' provider without constants taken from locally loaded modules."""

    def _maybe_draw_constant(self, choice_type: Any, constraints: Any, *, p: float = 0.05) -> Any:
        return None


def register() -> str:
    """Make the backend available and return its name."""
    AVAILABLE_PROVIDERS.setdefault(BACKEND, SeededProvider)
    return BACKEND
