"""What both halves of the pytest plugin need: the thin entry point and its working half.

:mod:`llmguard_ops.pytest_plugin` (loaded by pytest on every run) and
:mod:`llmguard_ops._pytest_suite` (imported once llmguard is switched on) both read these;
keeping them here lets the working half import nothing from the entry point, so the two
modules never import each other.
"""

from __future__ import annotations

#: the run id a supervising pytest hands its child; the child's report must carry it
SUPERVISED_ENV = "LLMGUARD_PYTEST_RUN_ID"


class LlmguardGateWarning(UserWarning):
    """A ``warning`` or ``info`` check whose gate failed: recorded, not a test failure."""
