"""``policy.isolation: process``: each check in a forked child under its timeout.

The child inherits the loaded models and datasets (``fork``, no reloading), runs the
check, and sends its output back as JSON (never pickle: nothing the check built is
executed in the parent). A segfault, ``os._exit``, an out-of-memory kill or a hang ends
only the child: the parent turns it into an ERROR of that check and the run goes on.

Limits: POSIX only (``os.fork``); a child does not share its prediction cache with the
parent (a later check may call the model again); forking a process with running threads
copies only the calling thread, so a library holding a lock in another thread at that
moment can deadlock the child, which then ends at its timeout. No memory limit is set:
an address-space limit (``RLIMIT_AS``) in a child of a process holding BLAS thread pools
made the child hang instead of failing, so it is left out.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from .results import CheckOutput, Metric


class ChildEnded(Exception):
    """The check's child process ended without sending a result."""


class RemoteError(Exception):
    """An exception raised in the check's child, rebuilt from what it sent."""

    def __init__(self, type_name: str, message: str, skip: bool, skip_ok: bool, formatted: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.formatted = formatted
        self.skip = skip
        self.skip_ok = skip_ok


def _child(fn: Callable[[], Any], write_fd: int, skip_check: Callable[[BaseException], bool]) -> None:
    from .errors import CheckSkipped
    from .outputs import jsonable

    try:
        try:
            value = fn()
            if isinstance(value, CheckOutput):
                payload: dict[str, Any] = {
                    "ok": {
                        "metrics": {k: m.model_dump() for k, m in value.metrics.items()},
                        "details": jsonable(value.details),
                        "warnings": list(value.warnings),
                        "artifacts": dict(value.artifacts),
                    }
                }
            else:
                payload = {"wrong_type": type(value).__name__}
        except BaseException as exc:
            skip = isinstance(exc, CheckSkipped)
            payload = {
                "error": {
                    "type": type(exc).__name__,
                    "message": _safe_str(exc),
                    "traceback": traceback.format_exc(),
                    "skip": skip,
                    "skip_ok": skip and skip_check(exc),
                }
            }
        data = json.dumps(payload).encode("utf-8")
    except BaseException as exc:
        data = json.dumps(
            {
                "error": {
                    "type": type(exc).__name__,
                    "message": _safe_str(exc),
                    "traceback": None,
                    "skip": False,
                    "skip_ok": False,
                }
            }
        ).encode()
    view = memoryview(data)
    while view:
        n = os.write(write_fd, view)
        view = view[n:]


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)[:20_000] or type(exc).__name__
    except BaseException:
        return type(exc).__name__


def call_in_child(fn: Callable[[], Any], timeout: float, skip_check: Callable[[BaseException], bool]) -> Any:
    """``fn()`` in a forked child; returns a CheckOutput or raises (timeout, error, death)."""
    from .runner import CheckTimeout

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send, leave without running the parent's exit handlers
        os.close(read_fd)
        try:
            _child(fn, write_fd, skip_check)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise CheckTimeout(
                    f"timed out after {timeout:g}s (its process was killed; raise 'timeout:' if it needs longer)"
                )
            ready, _, _ = select.select([read_fd], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    try:
        payload = json.loads(b"".join(chunks)) if chunks else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        if os.WIFSIGNALED(status):
            try:
                how = f"signal {signal.Signals(os.WTERMSIG(status)).name}"
            except ValueError:
                how = f"signal {os.WTERMSIG(status)}"
        else:
            how = f"exit status {os.waitstatus_to_exitcode(status)}"
        raise ChildEnded(f"the check's process ended ({how}) without a result")
    if "error" in payload:
        e = payload["error"]
        raise RemoteError(
            str(e["type"]), str(e["message"]), bool(e["skip"]), bool(e["skip_ok"]), str(e.get("traceback") or "")
        )
    if "wrong_type" in payload:
        raise RemoteError("TypeError", f"the check returned {payload['wrong_type']}, not CheckOutput", False, False)
    ok = payload["ok"]
    metrics = {k: Metric.model_construct(**m) for k, m in ok["metrics"].items()}
    return CheckOutput.model_construct(
        metrics=metrics, details=ok["details"], warnings=ok["warnings"], artifacts=ok["artifacts"]
    )
