"""Which risk each category evidences: OWASP Top 10 for LLM Applications 2025, NIST AI 600-1."""

from __future__ import annotations

TAXONOMY: dict[str, dict[str, str]] = {
    "prompt_injection": {"owasp": "LLM01:2025 Prompt Injection", "nist": "Information Security"},
    "jailbreak": {
        "owasp": "LLM01:2025 Prompt Injection",
        "nist": "Dangerous, Violent, or Hateful Content; Information Security",
    },
    "system_prompt_leak": {"owasp": "LLM07:2025 System Prompt Leakage", "nist": "Information Security"},
    "secret_and_pii_leak": {"owasp": "LLM02:2025 Sensitive Information Disclosure", "nist": "Data Privacy"},
    "harmful_compliance": {
        "owasp": "LLM01:2025 Prompt Injection (safety-guideline bypass)",
        "nist": "CBRN Information or Capabilities; Dangerous, Violent, or Hateful Content",
    },
    "over_refusal": {
        "owasp": "(usability: the cost of over-blocking; not an OWASP risk)",
        "nist": "Human-AI Configuration",
    },
}


def risk_of(category: str) -> dict[str, str]:
    """The mapping of ``category`` (``unmapped`` for a plugin's own category)."""
    return TAXONOMY.get(category, {"owasp": "unmapped", "nist": "unmapped"})
