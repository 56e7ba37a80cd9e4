"""Incident hooks and webhooks, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import BASE_SUITE

from llmguard_ops import hookimpl, run

QUALITY = "  - id: quality\n    uses: performance.classification\n    with: {n_resamples: 0}\n"


class Receiver:
    """A local webhook endpoint that fails the first ``fail_first`` requests with 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.attempts = 0
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.attempts += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.attempts <= receiver.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                receiver.headers.append(dict(self.headers))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


def notify_suite(url: str, when: str = "[BLOCK, REVIEW]") -> str:
    return (
        BASE_SUITE + QUALITY + f"notify:\n  - webhook: {url}\n    when: {when}\n"
        "    retries: 3\n    timeout: 2\n    headers: {Authorization: 'Bearer ${LLMG_TEST_TOKEN}'}\n"
    )


def test_webhook_posts_on_block_with_retries(
    receiver: Receiver, write_suite: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMG_TEST_TOKEN", "s3cr3t-token-value")
    path = write_suite(notify_suite(receiver.url))
    outcome = run(path, tmp_path, overrides=["checks.quality.gate={accuracy: {min: 0.99}}"])
    assert outcome.report.decision.decision.value == "BLOCK"
    assert receiver.attempts == 3  # two 503s, then delivered
    [body] = receiver.bodies
    assert body["decision"] == "BLOCK" and body["suite"] == "unit"
    assert body["checks"] == [
        {"id": "quality", "uses": "performance.classification", "status": "fail", "severity": "blocker"}
    ]
    assert receiver.headers[0]["Authorization"] == "Bearer s3cr3t-token-value"
    assert outcome.warnings == []
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert "s3cr3t-token-value" not in file.read_text(errors="ignore")


def test_webhook_not_called_on_promote(
    receiver: Receiver, write_suite: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMG_TEST_TOKEN", "x")
    outcome = run(write_suite(notify_suite(receiver.url)), tmp_path)
    assert outcome.report.decision.decision.value == "PROMOTE"
    assert receiver.attempts == 0


def test_unreachable_webhook_is_a_warning_not_a_crash(
    write_suite: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMG_TEST_TOKEN", "x")
    dead = Receiver()
    url = dead.url
    dead.close()
    suite = notify_suite(url, when="[PROMOTE]").replace("retries: 3", "retries: 1")
    outcome = run(write_suite(suite), tmp_path)
    assert outcome.report.decision.decision.value == "PROMOTE"
    assert len(outcome.warnings) == 1 and "webhook unreachable after 2 attempts" in outcome.warnings[0]


def test_incident_hook_runs_on_block_only_and_failures_are_isolated(
    write_suite: Callable[[str], Path], tmp_path: Path
) -> None:
    seen: list[str] = []

    class Playbook:
        @hookimpl
        def llmguard_on_incident(self, report, out_dir):  # type: ignore[no-untyped-def]
            seen.append(f"incident {report.decision.decision.value} {(out_dir / 'report.json').exists()}")

    class Broken:
        @hookimpl
        def llmguard_on_decision(self, report):  # type: ignore[no-untyped-def]
            raise RuntimeError("ticket system down")

    plugins = [("playbook", Playbook()), ("broken", Broken())]
    path = write_suite(BASE_SUITE + QUALITY)
    ok = run(path, tmp_path / "a", objects=plugins)
    assert seen == [] and ok.report.decision.decision.value == "PROMOTE"
    assert ok.warnings == ["plugin 'broken' failed in llmguard_on_decision: RuntimeError: ticket system down"]
    blocked = run(path, tmp_path / "b", objects=plugins, overrides=["checks.quality.gate={accuracy: {min: 0.99}}"])
    assert blocked.report.decision.decision.value == "BLOCK"
    assert seen == ["incident BLOCK True"]
