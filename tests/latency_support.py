"""Test support for the latency checks: a tiny causal LM and a local OpenAI-compatible server.

The model is built from a config (2 layers, hidden 32) with a word-level tokenizer
trained here, saved with ``save_pretrained`` and loaded back: the real loading path,
nothing downloaded. The server speaks the OpenAI completions and chat APIs, streamed
(server-sent events, one event per token, ``usage`` at the end) or not, on
127.0.0.1 at an ephemeral port, in a thread; it counts the requests it served.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = (
    "the",
    "model",
    "reads",
    "a",
    "prompt",
    "and",
    "writes",
    "an",
    "answer",
    "about",
    "credit",
    "risk",
    "latency",
    "tokens",
    "every",
    "request",
    "has",
    "first",
    "token",
    "then",
    "more",
    "until",
    "ends",
)
PROMPTS = [
    "the model reads a prompt",
    "every request has a first token",
    "writes an answer about credit risk",
    "then more tokens until the answer ends",
    "a prompt and a answer",
    "latency tokens every request",
]


def build_tiny_lm(folder: Path) -> Path:
    """Train a word-level tokenizer and save a 2-layer GPT-2 with it into ``folder``."""
    from llmguard_ops.testing import tiny_causal_lm, tiny_tokenizer

    tokenizer = tiny_tokenizer([" ".join(WORDS)] * 3 + PROMPTS, special_tokens=["[PAD]", "[UNK]", "[EOS]"])
    tiny_causal_lm(folder, tokenizer, n_positions=256, bos_token_id=2, eos_token_id=2, pad_token_id=0)
    return folder


def write_prompts(path: Path) -> Path:
    """A JSONL dataset with a ``prompt`` text column."""
    path.write_text("".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    return path


class _TokenQueue:
    """A transformers streamer that hands each generated token id to the HTTP handler."""

    def __init__(self) -> None:
        self.queue: queue.Queue[int | None] = queue.Queue()
        self._prompt = True

    def put(self, value: Any) -> None:
        if self._prompt:  # generate() first puts the prompt
            self._prompt = False
            return
        for token in value.reshape(-1).tolist():
            self.queue.put(int(token))

    def end(self) -> None:
        self.queue.put(None)


class OpenAIServer:
    """A minimal OpenAI-compatible server over a local causal LM folder (test use only)."""

    def __init__(self, model_dir: Path, api_key: str | None = None, max_requests: int = 200) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()
        self.api_key = api_key
        self.max_requests = max_requests
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # as serving frameworks do: without it, Nagle's algorithm holds each small SSE
                # event back until the client's delayed ACK (~40 ms per token)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

            def do_POST(self) -> None:
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAIServer:
        import torch

        # one intra-op thread: the server shares a small CI machine with the client under test
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        self.httpd.shutdown()
        self.httpd.server_close()
        torch.set_num_threads(self._threads)

    def _reply(self, h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length", "0"))) or b"{}")
        with self._lock:
            self.requests += 1
            over = self.requests > self.max_requests
            self.bodies.append(body)
            self.auth_headers.append(h.headers.get("Authorization"))
        if over:
            self._reply(h, 429, {"error": {"message": "request budget of this test server exhausted"}})
            return
        if self.api_key is not None and h.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._reply(h, 401, {"error": {"message": "bad key"}})
            return
        chat = h.path.endswith("/chat/completions")
        if not chat and not h.path.endswith("/completions"):
            self._reply(h, 404, {"error": {"message": f"no route {h.path}"}})
            return
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        max_tokens = int(body.get("max_tokens", 16))
        min_tokens = int(body.get("min_tokens", 0)) if body.get("ignore_eos") else 0
        tokens = self._generate(prompt, max_tokens, min_tokens)
        if not body.get("stream"):
            ids = list(tokens)
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            choice = (
                {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0, "text": text}
            )
            self._reply(
                h,
                200,
                {
                    "object": "chat.completion" if chat else "text_completion",
                    "choices": [choice],
                    "usage": {"completion_tokens": len(ids)},
                },
            )
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        count = 0
        for token in tokens:
            count += 1
            piece = self.tokenizer.decode([token], skip_special_tokens=True)
            piece = (" " if count > 1 else "") + (piece or "_")
            choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
            h.wfile.write(f"data: {json.dumps({'choices': [choice]})}\n\n".encode())
            h.wfile.flush()
        h.wfile.write(f"data: {json.dumps({'choices': [], 'usage': {'completion_tokens': count}})}\n\n".encode())
        h.wfile.write(b"data: [DONE]\n\n")
        h.wfile.flush()
        h.close_connection = True

    def _generate(self, prompt: str, max_tokens: int, min_tokens: int) -> Any:
        """Yield token ids as the model produces them (generate runs in a thread)."""
        import torch

        enc = self.tokenizer(prompt, return_tensors="pt")
        stream = _TokenQueue()
        kwargs: dict[str, Any] = dict(
            **enc, max_new_tokens=max_tokens, do_sample=False, streamer=stream, pad_token_id=self.tokenizer.pad_token_id
        )
        if min_tokens:
            kwargs["min_new_tokens"] = min_tokens

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            finally:
                stream.end()

        threading.Thread(target=run, daemon=True).start()
        while (token := stream.queue.get(timeout=60)) is not None:
            yield token
