"""A REVIEW notifies its approvers: who must sign, where the page is, what to run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import BASE_SUITE
from tests.test_notify import Receiver

from llmguard_ops import run

REVIEW_CHECK = (
    "  - id: strict\n    uses: performance.classification\n    with: {n_resamples: 0}\n"
    "    gate: {accuracy: {min: 0.999}}\n    severity: warning\n"
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _suite(url: str, approvals: bool = True) -> str:
    policy = "policy:\n  approvals: {required: 2, roles: [ml-lead, risk], valid_for_days: 14}\n" if approvals else ""
    return (
        BASE_SUITE
        + REVIEW_CHECK
        + policy
        + f"notify:\n  - webhook: {url}\n    when: [REVIEW]\n    retries: 0\n"
        + "    approvers: [Ada Lovelace, '@grace']\n"
        + "    report_url: 'https://ci.example/runs/${LLMG_RUN}/report.html'\n"
    )


def test_review_posts_the_approval_request(
    receiver: Receiver, write_suite: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMG_RUN", "4711")
    out = tmp_path / "out"
    outcome = run(write_suite(_suite(receiver.url)), out)
    assert outcome.report.decision.decision.value == "REVIEW"
    assert outcome.warnings == []
    [body] = receiver.bodies
    assert body["decision"] == "REVIEW"
    approval = body["approval"]
    assert approval["approvers"] == ["Ada Lovelace", "@grace"]
    assert approval["required"] == 2 and approval["required_roles"] == ["ml-lead", "risk"]
    assert approval["policy"]["valid_for_days"] == 14 and approval["policy"]["two_person_rule"] is True
    assert approval["report"] == "https://ci.example/runs/4711/report.html"
    attestation = out.resolve() / "attestation.dsse.json"
    assert approval["attestation"] == str(attestation) and attestation.is_file()
    assert Path(approval["compliance"]).is_file()
    assert approval["approve_command"].startswith(f"llmguard approve {attestation} --key ")
    assert "--role ROLE" in approval["approve_command"] and "--reason" in approval["approve_command"]
    assert "--approvals" in approval["verify_command"] and "--trust" in approval["verify_command"]
    # the compliance page of a REVIEW does not claim the sign-off it is still waiting for
    page = (out / "compliance.md").read_text()
    [row] = [line for line in page.splitlines() if line.startswith("| Annex IV 2(g):")]
    assert "| **partly** |" in row
    assert "✗ signed by the responsible persons (approvals): pending: `policy.approvals` asks for 2" in row


def test_review_without_a_policy_says_it_cannot_be_signed_off(
    receiver: Receiver, write_suite: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMG_RUN", "1")
    out = tmp_path / "out"
    run(write_suite(_suite(receiver.url, approvals=False)), out)
    [body] = receiver.bodies
    assert body["approval"]["policy"] is None
    assert "cannot be signed off" in body["approval"]["note"]
    assert body["approval"]["report"] == "https://ci.example/runs/1/report.html"


def test_promote_and_block_carry_no_approval_request(
    receiver: Receiver, write_suite: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMG_RUN", "1")
    suite = _suite(receiver.url).replace("when: [REVIEW]", "when: [PROMOTE, BLOCK, REVIEW]")
    path = write_suite(suite)
    promoted = run(path, tmp_path / "p", overrides=["checks.strict.gate={accuracy: {min: 0.1}}"])
    assert promoted.report.decision.decision.value == "PROMOTE"
    blocked = run(path, tmp_path / "b", overrides=["checks.strict.severity=blocker"])
    assert blocked.report.decision.decision.value == "BLOCK"
    assert [b["decision"] for b in receiver.bodies] == ["PROMOTE", "BLOCK"]
    assert all("approval" not in b for b in receiver.bodies)


def test_the_documented_escalation_example_loads(
    write_suite: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from llmguard_ops.loading import load_suite
    from llmguard_ops.plugins import get_plugin_manager

    doc = (Path(__file__).resolve().parents[1] / "docs" / "evidence.md").read_text(encoding="utf-8")
    start = doc.index("## Escalation")
    [example] = re.findall(r"```yml\n(.*?)```", doc[start : doc.index("\n## ", start + 3)], flags=re.S)
    for var in ("REVIEW_HOOK", "CI_RUN_ID", "REVIEW_TOKEN"):
        monkeypatch.setenv(var, "v")
    loaded = load_suite(write_suite(BASE_SUITE + REVIEW_CHECK + example), get_plugin_manager().registry())
    [target] = loaded.suite.notify
    assert target.when == ["REVIEW"] and target.approvers == ["Ada Lovelace", "@grace"]
    assert target.report_url == "https://ci.example/runs/v/report.html"
