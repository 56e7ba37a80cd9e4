"""The ``http`` model loader: an OpenAI-compatible endpoint (vLLM, TGI, llama.cpp, ...).

A suite names the endpoint, never a secret::

    models:
      served:
        loader: http
        options: {base_url: "http://127.0.0.1:8000/v1", model: my-model, api: completions,
                  api_key_env: SERVING_API_KEY}

The key is read from the environment variable named by ``api_key_env`` and sent as a
bearer token; it is kept off the object's ``repr`` and out of every report. An endpoint
has no weights to hash: its digest is the sha256 of the canonical JSON (sorted keys, no
spaces, UTF-8) of the endpoint description — ``{"api", "base_url", "headers" (names
only), "loader": "http", "model", "request"}`` — so it identifies what was asked for.
Pin the served revision in ``model`` to make it identify what answered.

Standard library only (``http.client``), one keep-alive connection per thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmguard_ops import ArtifactError, flatten_messages

API_KINDS = ("completions", "chat")
_REQUEST_KEYS = ("temperature", "top_p", "max_tokens", "seed")


@dataclass
class StreamTiming:
    """Clock readings (``perf_counter_ns``) of one streamed request."""

    sent_ns: int
    first_ns: int | None = None
    last_ns: int | None = None
    tokens: int = 0
    text: str = ""
    token_times_ns: list[int] = field(default_factory=list)


def _description(options: dict[str, Any]) -> dict[str, Any]:
    base_url = options.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ArtifactError("loader 'http' needs options.base_url, e.g. http://127.0.0.1:8000/v1")
    api = options.get("api", "completions")
    if api not in API_KINDS:
        raise ArtifactError(f"options.api must be one of {', '.join(API_KINDS)}, got {api!r}")
    model = options.get("model")
    if not isinstance(model, str) or not model:
        raise ArtifactError("loader 'http' needs options.model (the served model's name)")
    headers = options.get("headers") or {}
    if not isinstance(headers, dict):
        raise ArtifactError("options.headers must be a mapping of header names to values")
    return {
        "loader": "http",
        "base_url": base_url.rstrip("/"),
        "api": api,
        "model": model,
        "headers": sorted(str(h) for h in headers),
        "request": {k: options[k] for k in _REQUEST_KEYS if k in options},
    }


def digest_endpoint(spec: Any, base: Path) -> tuple[str, str]:
    """sha256 of the canonical JSON of the endpoint description (see the module docstring)."""
    text = json.dumps(_description(dict(spec.options)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), "endpoint-description-sha256"


def load_endpoint(spec: Any, base: Path) -> HttpModel:
    """Build the client; the API key comes from the variable ``options.api_key_env``."""
    options = dict(spec.options)
    desc = _description(options)
    key = None
    env = options.get("api_key_env")
    if env is not None:
        key = os.environ.get(str(env))
        if not key:
            raise ArtifactError(f"environment variable {env} (options.api_key_env) is not set")
    headers = {str(k): str(v) for k, v in (options.get("headers") or {}).items()}
    retries = options.get("retries", 3)
    backoff = options.get("backoff_s", 0.25)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        raise ArtifactError(f"options.retries must be an integer from 0 to 10, got {retries!r}")
    if not isinstance(backoff, int | float) or isinstance(backoff, bool) or not 0 <= backoff <= 60:
        raise ArtifactError(f"options.backoff_s must be a number of seconds from 0 to 60, got {backoff!r}")
    model = HttpModel(desc, headers, key, float(options.get("timeout_s", 120.0)), retries, float(backoff))
    concurrency = options.get("concurrency", 1)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 1024:
        raise ArtifactError(f"options.concurrency must be an integer from 1 to 1024, got {concurrency!r}")
    model.concurrency = concurrency
    return model


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Answers retried with backoff (with connection errors): the server may recover."""

_CONNECTION_ERRORS = (ConnectionError, http.client.CannotSendRequest, http.client.BadStatusLine)


@dataclass
class TransportStats:
    """Attempts sent and transient failures seen (each retried or, at the last try, raised)."""

    attempts: int = 0
    transient_errors: int = 0


class _Closer:
    """Closes a thread's kept-alive connection when the thread's locals go (the worker thread
    ended, or the model was dropped), instead of leaving the socket to the garbage collector."""

    __slots__ = ("conn",)

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn = conn

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown there is nothing to release
            self.conn.close()


class HttpModel:
    """An OpenAI-compatible text endpoint with ``predict``/``generate`` and timed streaming."""

    input_kind = "text"
    is_remote = True

    def __init__(
        self,
        description: dict[str, Any],
        headers: dict[str, str],
        api_key: str | None,
        timeout_s: float,
        retries: int = 3,
        backoff_s: float = 0.25,
    ) -> None:
        self.description = description
        self.api: str = description["api"]
        self.model_name: str = description["model"]
        self.defaults: dict[str, Any] = dict(description["request"])
        url = urllib.parse.urlsplit(description["base_url"])
        self._https = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port
        self._prefix = url.path.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json", **headers}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.transport_stats = TransportStats()
        self._stats_lock = threading.Lock()
        self._secrets = [v for v in (api_key, *headers.values()) if v and len(v) >= 4]
        self.concurrency = 1  # requests in flight in chat(); options.concurrency
        self._local = threading.local()

    def __repr__(self) -> str:  # never the headers: they may hold the key
        return f"HttpModel({self.description['base_url']!r}, api={self.api!r}, model={self.model_name!r})"

    # -- transport ------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout_s)
            self._local.conn = conn
            self._local.closer = _Closer(conn)
        if conn.sock is None:
            conn.connect()
            sock = conn.sock
            assert sock is not None
            # small requests go out at once (no Nagle delay), as a latency client must
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None
        self._local.closer = None

    @property
    def _path(self) -> str:
        return f"{self._prefix}/{'chat/completions' if self.api == 'chat' else 'completions'}"

    @property
    def url(self) -> str:
        """The URL requests go to (never with credentials: they travel in headers)."""
        return f"{self.description['base_url']}/{'chat/completions' if self.api == 'chat' else 'completions'}"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _count(self, transient: bool) -> None:
        with self._stats_lock:
            self.transport_stats.attempts += 1
            self.transport_stats.transient_errors += transient

    def _post(self, body: dict[str, Any]) -> http.client.HTTPResponse:
        """POST ``body``; 429/5xx answers and connection errors are retried with backoff.

        Each attempt is counted in :attr:`transport_stats` (the checks' ``error_rate``); a
        kept-alive connection the server closed between requests is reopened uncounted.
        Errors name the URL, never a credential.
        """
        data = json.dumps(body).encode("utf-8")
        attempt = 0
        stale_retry = True
        while True:
            conn = getattr(self._local, "conn", None)
            reused = conn is not None and conn.sock is not None
            problem: str
            try:
                conn = self._connection()
                conn.request("POST", self._path, body=data, headers=self._headers)
                response = conn.getresponse()
            except TimeoutError:
                self._drop_connection()
                self._count(False)
                raise ArtifactError(f"{self.url}: no answer within {self.timeout_s:g} s (options.timeout_s)") from None
            except _CONNECTION_ERRORS as exc:
                self._drop_connection()
                if reused and stale_retry:  # the server closed an idle keep-alive connection
                    stale_retry = False
                    continue
                problem = f"{type(exc).__name__}: {exc}"
            except OSError as exc:  # e.g. no route to host
                self._drop_connection()
                problem = f"{type(exc).__name__}: {exc.strerror or exc}"
            else:
                if response.status == 200:
                    self._count(False)
                    return response
                detail = response.read(500).decode("utf-8", "replace")
                self._drop_connection()
                problem = f"HTTP {response.status}: {detail}"
                if response.status not in RETRY_STATUSES:
                    self._count(False)
                    raise ArtifactError(self._redact(f"{self.url}: {problem}"))
            self._count(True)
            if attempt >= self.retries:
                raise ArtifactError(
                    self._redact(f"{self.url}: {problem} (after {attempt + 1} attempt{'s' if attempt else ''})")
                )
            time.sleep(self.backoff_s * 2**attempt)
            attempt += 1
            stale_retry = True

    def _payload(self, raw: bytes) -> dict[str, Any]:
        """The JSON object of a 200 answer, which must hold ``choices``."""
        text = raw.decode("utf-8", "replace")
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            message = f"{self.url}: HTTP 200 with a body that is not JSON: {text[:200]}"
            raise ArtifactError(self._redact(message)) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list) or not payload["choices"]:
            shown = payload.get("error", payload) if isinstance(payload, dict) else payload
            raise ArtifactError(self._redact(f"{self.url}: HTTP 200 without choices: {json.dumps(shown)[:200]}"))
        return payload

    def _body(self, prompt: str, max_tokens: int | None, stream: bool, extra: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, "temperature": 0, **self.defaults, **extra}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _finish(self, response: http.client.HTTPResponse) -> None:
        response.read()
        if response.will_close:
            self._drop_connection()

    # -- model face -----------------------------------------------------------------

    def generate(self, prompts: list[str], max_new_tokens: int | None = None, **extra: Any) -> list[str]:
        """Non-streamed completions, one request per prompt, in order."""
        out = []
        for prompt in prompts:
            response = self._post(self._body(prompt, max_new_tokens, False, extra))
            payload = self._payload(response.read())
            if response.will_close:
                self._drop_connection()
            choice = payload["choices"][0]
            message = choice.get("message") if isinstance(choice, dict) else None
            text = (message or {}).get("content") if self.api == "chat" else choice.get("text")
            if not isinstance(text, str):
                raise ArtifactError(
                    self._redact(f"{self.url}: HTTP 200 with a choice without text: {json.dumps(choice)[:200]}")
                )
            out.append(text)
        return out

    def predict(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.generate(list(texts)), dtype=object)

    def chat(
        self, conversations: list[list[dict[str, str]]], max_new_tokens: int | None = None, **settings: Any
    ) -> list[dict[str, Any]]:
        """One non-streamed request per conversation: ``{text, prompt_tokens, output_tokens}``.

        ``api: chat`` sends the messages as they are; ``api: completions`` sends them
        flattened (:func:`llmguard_ops.flatten_messages`). ``temperature``, ``top_p``,
        ``seed`` and ``stop`` go into the request body under their OpenAI names; the token
        counts are the server's ``usage`` when it reports one.
        """
        extra = {k: v for k, v in settings.items() if k in ("temperature", "top_p", "seed", "stop") and v is not None}
        if not extra.get("stop"):
            extra.pop("stop", None)

        def one(messages: list[dict[str, str]]) -> dict[str, Any]:
            body = self._body(flatten_messages(messages), max_new_tokens, False, extra)
            if self.api == "chat":
                body["messages"] = list(messages)
            response = self._post(body)
            payload = self._payload(response.read())  # a 200 without choices is an error, never ""
            if response.will_close:
                self._drop_connection()
            choice = payload["choices"][0]
            message = choice.get("message") if isinstance(choice, dict) else None
            text = (message or {}).get("content") if self.api == "chat" else choice.get("text")
            if not isinstance(text, str):
                raise ArtifactError(
                    self._redact(f"{self.url}: HTTP 200 with a choice without text: {json.dumps(choice)[:200]}")
                )
            raw_usage = payload.get("usage")
            usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
            return {
                "text": text,
                "prompt_tokens": usage.get("prompt_tokens"),
                "output_tokens": usage.get("completion_tokens"),
            }

        workers = min(self.concurrency, len(conversations))
        if workers <= 1:
            return [one(m) for m in conversations]
        from concurrent.futures import ThreadPoolExecutor

        # one keep-alive connection per worker thread (threading.local), answers in order
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmguard-chat") as pool:
            return list(pool.map(one, conversations))

    def stream_timed(self, prompt: str, max_new_tokens: int, ignore_eos: bool = False) -> StreamTiming:
        """One streamed request, with the clock read at send, at each content chunk and at the end.

        The token count is the server's ``usage.completion_tokens`` when it reports one
        (``stream_options.include_usage``), else the number of non-empty content chunks.
        """
        extra: dict[str, Any] = {"ignore_eos": True, "min_tokens": max_new_tokens} if ignore_eos else {}
        timing = StreamTiming(sent_ns=time.perf_counter_ns())
        response = self._post(self._body(prompt, max_new_tokens, True, extra))
        if (response.getheader("Content-Type") or "").startswith("application/json"):  # not a stream
            body = response.read()
            self._drop_connection()
            self._payload(body)  # raises for an error object in place of choices
            raise ArtifactError(
                f"{self.url}: HTTP 200 with one JSON answer, not a stream; the endpoint ignores stream: true"
            )
        chunks = 0
        usage_tokens: int | None = None
        parts: list[str] = []
        answered = False
        for event in _sse_events(response):
            if event == "[DONE]":
                break
            try:
                payload = json.loads(event)
            except json.JSONDecodeError:
                self._drop_connection()
                raise ArtifactError(self._redact(f"{self.url}: a streamed event is not JSON: {event[:200]}")) from None
            if not isinstance(payload, dict) or "error" in payload:
                self._drop_connection()
                shown = payload.get("error", payload) if isinstance(payload, dict) else payload
                raise ArtifactError(self._redact(f"{self.url}: the stream sent an error: {json.dumps(shown)[:200]}"))
            answered = answered or isinstance(payload.get("choices"), list)
            usage = payload.get("usage")
            if usage and usage.get("completion_tokens") is not None:
                usage_tokens = int(usage["completion_tokens"])
            for choice in payload.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") if self.api == "chat" else choice.get("text")
                if piece:
                    now = time.perf_counter_ns()
                    if timing.first_ns is None:
                        timing.first_ns = now
                    timing.last_ns = now
                    timing.token_times_ns.append(now)
                    chunks += 1
                    parts.append(piece)
        self._finish(response)
        if not answered:
            raise ArtifactError(f"{self.url}: HTTP 200 stream without choices")
        timing.tokens = usage_tokens if usage_tokens is not None else chunks
        timing.text = "".join(parts)
        return timing


def _sse_events(response: http.client.HTTPResponse) -> Iterator[str]:
    """The ``data:`` payloads of a server-sent event stream, one per event."""
    data: list[str] = []
    while True:
        raw = response.readline()
        if not raw:
            break
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    if data:
        yield "\n".join(data)
