"""HTTP endpoints against a real scripted server on 127.0.0.1: a 200 without choices is an
error naming the URL, transient failures are retried and counted (``error_rate``), and no
error carries the token."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmguard_ops import ArtifactError
from llmguard_ops.cli import main

TOKEN = "sk-test-0123456789abcdef"


class ScriptedServer:
    """Answers each POST with the next scripted ``(status, payload)``; then a good stream.

    ``payload`` ``"stream"`` sends three SSE tokens with usage; ``"drop"`` closes the
    connection without answering.
    """

    def __init__(self, script: list[tuple[int, Any]]) -> None:
        self.script = list(script)
        self.requests = 0
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    server.requests += 1
                    status, payload = server.script.pop(0) if server.script else (200, "stream")
                if payload == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if payload == "stream":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for piece in ("a", "b", "c"):
                        self.wfile.write(f"data: {json.dumps({'choices': [{'text': piece}]})}\n\n".encode())
                    usage = {"choices": [], "usage": {"completion_tokens": 3}}
                    self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
                    self.close_connection = True
                    return
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def client(base_url: str, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    from llmguard_checks.latency.endpoint import load_endpoint

    monkeypatch.setenv("ENDPOINT_KEY", TOKEN)
    spec = type(
        "Spec",
        (),
        {"options": {"base_url": base_url, "model": "m", "api_key_env": "ENDPOINT_KEY", "backoff_s": 0.01, **options}},
    )()
    return load_endpoint(spec, Path("."))


def test_a_200_without_choices_is_an_error_naming_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptedServer([(200, {"error": {"message": "model overloaded"}})]) as server:
        model = client(server.base_url, monkeypatch)
        with pytest.raises(ArtifactError) as info:
            model.generate(["hello"])
    message = str(info.value)
    assert message.startswith(f"{server.base_url}/completions: HTTP 200 without choices:")
    assert "model overloaded" in message


def test_a_choice_without_text_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptedServer([(200, {"choices": [{"index": 0}]})]) as server:
        model = client(server.base_url, monkeypatch)
        with pytest.raises(ArtifactError, match="HTTP 200 with a choice without text"):
            model.generate(["hello"])


def test_transient_failures_are_retried_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptedServer([(500, {"error": "boom"}), (200, "drop"), (503, {"error": "busy"})]) as server:
        model = client(server.base_url, monkeypatch)
        timing = model.stream_timed("hello", 3)
    assert timing.text == "abc" and timing.tokens == 3
    assert server.requests == 4
    assert (model.transport_stats.attempts, model.transport_stats.transient_errors) == (4, 3)


def test_retries_give_up_with_the_url_and_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    echo = {"error": f"upstream rejected Bearer {TOKEN}"}
    with ScriptedServer([(502, echo)] * 3) as server:
        model = client(server.base_url, monkeypatch, retries=2)
        with pytest.raises(ArtifactError) as info:
            model.stream_timed("hello", 3)
    message = str(info.value)
    assert message.startswith(f"{server.base_url}/completions: HTTP 502:")
    assert "(after 3 attempts)" in message
    assert TOKEN not in message and "[redacted]" in message
    assert server.requests == 3


def test_a_refused_connection_is_retried_then_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = client(f"http://127.0.0.1:{port}/v1", monkeypatch, retries=1)
    with pytest.raises(ArtifactError) as info:
        model.generate(["hello"])
    assert str(info.value).startswith(f"http://127.0.0.1:{port}/v1/completions: ConnectionRefusedError")
    assert model.transport_stats.transient_errors == 2


SUITE = """\
apiVersion: llmguard/v1
name: endpoint
models:
  candidate: {{loader: http, options: {{base_url: "{url}", model: m, api_key_env: ENDPOINT_KEY, backoff_s: 0.01}}}}
datasets:
  current: {{path: prompts.csv, text: text}}
checks:
  - id: speed
    uses: latency.generation
    with: {{requests: 4, warmup: 0, max_new_tokens: 3}}
    gate: {gate}
"""


def _run(tmp_path: Path, url: str, gate: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    (tmp_path / "prompts.csv").write_text("text\nhello\nworld\n", encoding="utf-8")
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(url=url, gate=gate), encoding="utf-8")
    code = main(["run", str(suite), "--out", str(tmp_path / "out"), "-q", "--no-audit-log", "--history-dir", "off"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and TOKEN not in out + err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert TOKEN not in json.dumps(report)
    return code, report["checks"][0]


def test_a_200_error_stream_blocks_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENDPOINT_KEY", TOKEN)
    with ScriptedServer([(200, {"error": {"message": "no such model"}})]) as server:
        code, check = _run(tmp_path, server.base_url, "{tokens_per_s: {min: 0.001}}", capsys)
    assert code == 1  # BLOCK, never a PROMOTE on empty outputs
    assert check["status"] == "error"
    assert f"{server.base_url}/completions: HTTP 200 without choices" in check["error"]["message"]


def test_error_rate_is_gateable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENDPOINT_KEY", TOKEN)
    with ScriptedServer([(503, {"error": "busy"})]) as server:
        code, check = _run(tmp_path, server.base_url, "{error_rate: {max: 0.0}}", capsys)
    assert code == 1  # BLOCK: one of five attempts failed, though every request got its answer
    assert check["status"] == "fail"
    assert check["metrics"]["error_rate"]["value"] == pytest.approx(1 / 5)
    assert check["details"]["transient_errors"] == 1 and check["details"]["attempts"] == 5
