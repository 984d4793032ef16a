"""Headless Chromium for tests of pages ygg writes: open a file, collect every error the
page reports, evaluate an expression in it, take a screenshot.

Debian's ``chromium`` (scripts/setup.sh --test installs it) is driven over the DevTools
protocol on a pipe (``--remote-debugging-pipe``: JSON messages ending in a NUL byte, read
on the child's fd 3, written on its fd 4), so no port is opened and no websocket library is
needed.  Errors are what the protocol reports, not what a log line looks like in one
Chromium version: uncaught exceptions (``Runtime.exceptionThrown``), ``console.error``
and ``console.assert`` (``Runtime.consoleAPICalled``) and the browser's own error entries,
such as a resource that failed to load (``Log.entryAdded``).

It runs as root here, so with ``--no-sandbox``; the other switches keep it off the
network (this machine has none) and it gets a new profile directory each time.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--window-size=1200,900",
)


class BrowserError(Exception):
    pass


class Chromium:
    """One headless browser with one page; use as a context manager."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="ygg-chromium-")
        self.errors: list[str] = []
        self.messages: list[str] = []
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        to_child, self._to_browser = os.pipe()
        self._from_browser, from_child = os.pipe()

        def pipes_at_3_and_4() -> None:
            # Out of the way first: a pipe may itself be fd 3 or 4, and dup2 onto itself
            # would leave it closing at exec.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.process = subprocess.Popen(
            [
                binary,
                *FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,  # fds 3 and 4 must reach it; ours are not inheritable anyway
            preexec_fn=pipes_at_3_and_4,
            start_new_session=True,  # its helper processes in a group of its own
        )
        self._closed = False
        os.close(to_child)
        os.close(from_child)
        try:
            target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
            attached = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})
            self.session = attached["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                self._call(f"{domain}.enable", session=self.session)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the protocol ---------------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any] | None, session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data) :]
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, left))
            if not ready:
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError(f"Chromium exited (status {self.process.poll()})")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message = json.loads(raw)
        if "method" in message:
            self._note(message)
        return message

    def _note(self, event: dict[str, Any]) -> None:
        """Keep the page's errors and console messages as they come."""
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
            )
            self.messages.append(f"console.{params.get('type')}: {text}")
            if params.get("type") in ("error", "assert"):
                self.errors.append(f"console.{params.get('type')}: {text}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            text = f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip()
            self.messages.append(f"log.{entry.get('level')}: {text}")
            if entry.get("level") == "error":
                self.errors.append(f"log: {text}")
        self._events.append(event)

    def _call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        call = self._send(method, params, session)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == call:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def _wait_for(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self._events):
                if event["method"] == method:
                    del self._events[: i + 1]
                    return event
            self._events.clear()
            self._receive(deadline)

    # -- what tests use -------------------------------------------------------------------

    def open(self, path: str | Path) -> None:
        """Load a file and wait for its load event."""
        url = Path(path).resolve().as_uri()
        self._events.clear()
        result = self._call("Page.navigate", {"url": url}, self.session)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self._wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is waited for),
        after the page has drawn a frame."""
        wrapped = (
            "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
            f".then(() => ({expression}))"
        )
        result = self._call(
            "Runtime.evaluate",
            {"expression": wrapped, "returnByValue": True, "awaitPromise": True},
            self.session,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluating {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        data = self._call("Page.captureScreenshot", {"format": "png"}, self.session)["data"]
        return base64.b64decode(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._send("Browser.close", None, None)
            self.process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            # Still running, so its process group is still the one we started.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)
