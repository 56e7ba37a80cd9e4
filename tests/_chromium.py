"""A tiny Chrome DevTools Protocol client: open a page in headless Chromium, and record
its console errors, uncaught exceptions and every network request, then screenshot it.

Debian's ``chromium`` package (``apt-get install -y chromium``) is what CI installs; the
client speaks CDP over the ``websockets`` package.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageVisit:
    """What happened while a page loaded."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    evaluated: dict[str, Any] = field(default_factory=dict)


class _Session:
    def __init__(self, ws: Any, session_id: str) -> None:
        self.ws = ws
        self.session_id = session_id
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, params: dict[str, Any] | None = None, *, top: bool = False) -> dict[str, Any]:
        msg_id = next(self.ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if not top:
            msg["sessionId"] = self.session_id
        await self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    async def wait_for(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {timeout}s")
            self.events.append(json.loads(await asyncio.wait_for(self.ws.recv(), remaining)))


async def _visit(
    ws_url: str, url: str, screenshot: Path, width: int, height: int, expressions: dict[str, str]
) -> PageVisit:
    from websockets.asyncio.client import connect

    async with connect(ws_url, max_size=None) as ws:
        browser = _Session(ws, "")
        target = await browser.send("Target.createTarget", {"url": "about:blank"}, top=True)
        attached = await browser.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, top=True
        )
        page = _Session(ws, attached["sessionId"])
        page.ids = browser.ids
        for domain in ("Page", "Runtime", "Log", "Network"):
            await page.send(f"{domain}.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        page.events.clear()
        await page.send("Page.navigate", {"url": url})
        await page.wait_for("Page.loadEventFired", 30)
        await asyncio.sleep(0.3)  # let late console messages arrive
        visit = PageVisit()
        for name, expression in expressions.items():
            res = await page.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
            visit.evaluated[name] = res.get("result", {}).get("value")
        shot = await page.send("Page.captureScreenshot", {"format": "png"})
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        for event in page.events + browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                visit.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                visit.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                visit.exceptions.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                visit.log_errors.append(f"{params['entry'].get('source')}: {params['entry'].get('text')}")
        return visit


def visit(
    binary: str,
    page: Path,
    screenshot: Path,
    *,
    width: int = 1280,
    height: int = 1000,
    expressions: dict[str, str] | None = None,
) -> PageVisit:
    """Load ``page`` in a fresh headless Chromium and return what happened."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chromium did not open its debugging port")
                time.sleep(0.1)
            port, path = port_file.read_text().splitlines()[:2]
            return asyncio.run(
                _visit(
                    f"ws://127.0.0.1:{port}{path}",
                    page.resolve().as_uri(),
                    screenshot,
                    width,
                    height,
                    expressions or {},
                )
            )
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
