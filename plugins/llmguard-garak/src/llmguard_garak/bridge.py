"""A local bridge from garak to the suite's model.

garak runs as a subprocess (in this environment or in its own, ``python:``) with its
``function.Multiple`` generator pointed at :data:`CLIENT_SOURCE`, a standard-library module
that posts each prompt to a server this process runs on 127.0.0.1 (ephemeral port, a random
token). The server answers through ``llmguard_checks.safety._generate``, so garak attacks
exactly the model the suite loaded — python object, local transformers model or endpoint.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLIENT_SOURCE = '''"""garak generator function: forwards prompts to the llmguard-ops bridge (stdlib only)."""
import json
import os
import urllib.request


def generate(prompt, generations=1, **kwargs):
    if not isinstance(prompt, str):  # newer garak passes a conversation
        turns = getattr(prompt, "turns", None) or []
        prompt = "\\n".join(str(getattr(getattr(t, "content", None), "text", "") or "") for t in turns)
    body = json.dumps({"prompt": prompt, "n": int(generations)}).encode()
    request = urllib.request.Request(os.environ["LLMGUARD_GARAK_BRIDGE"], data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "X-Llmguard-Token": os.environ["LLMGUARD_GARAK_TOKEN"]})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())["outputs"]
'''


class Bridge:
    """The server side: ``answer(prompt, n)`` returns ``n`` outputs of the suite model."""

    def __init__(self, answer: Callable[[str, int], list[str]]) -> None:
        self.answer = answer
        self.token = secrets.token_hex(16)
        self.calls = 0
        self.errors: list[str] = []
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                if self.headers.get("X-Llmguard-Token") != bridge.token:
                    self.send_error(403)
                    return
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                    outputs = bridge.answer(str(body["prompt"]), int(body.get("n", 1)))
                    bridge.calls += 1
                    payload = json.dumps({"outputs": outputs}).encode()
                    self.send_response(200)
                except Exception as exc:  # reported by the check, never swallowed
                    bridge.errors.append(f"{type(exc).__name__}: {exc}")
                    payload = json.dumps({"error": str(exc)}).encode()
                    self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/generate"

    def __enter__(self) -> Bridge:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
