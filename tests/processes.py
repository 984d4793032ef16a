"""Running ygg and other programs as real processes in tests, with deadlines."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.helpers import ROOT


class Process:
    """A child process whose combined output is read line by line, with timeouts."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        *,
        checkout: bool = True,
    ) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(env, checkout),
            cwd=cwd,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)  # type: ignore[union-attr]
        self.output = ""
        self._pending = b""

    def _read(self, timeout: float) -> str:
        """One read: "data", "timeout" or "eof"."""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
            if not sel.select(timeout):
                return "timeout"
        chunk = self.proc.stdout.read()  # type: ignore[union-attr]
        if not chunk:
            return "eof"
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            self.output += line.decode(errors="replace") + "\n"
        return "data"

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        """Read until a line contains ``text``; returns that line."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.output.splitlines():
                if text in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen in {timeout}s; output:\n{self.output}")
            if self._read(min(left, 0.2)) == "eof" and self.proc.poll() is not None:
                raise AssertionError(
                    f"process exited ({self.proc.returncode}) before {text!r}:\n{self.output}"
                )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the process, wait for it, collect the rest of its output; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"did not stop within {timeout}s:\n{self.output}") from None
        while self._read(1.0) == "data":
            pass
        self.output += self._pending.decode(errors="replace")
        self._pending = b""
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def child_env(extra: dict[str, str] | None = None, checkout: bool = True) -> dict[str, str]:
    """A child's environment: this checkout's ygg first on the path (not a copy installed
    earlier, unless ``checkout`` is false), then ``extra`` (whose PYTHONPATH comes after)."""
    env = {**os.environ, **(extra or {})}
    first = str(ROOT) if checkout else ""
    env["PYTHONPATH"] = os.pathsep.join(p for p in (first, env.get("PYTHONPATH", "")) if p)
    return env


def run(
    argv: Sequence[str], timeout: float = 60.0, env: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=child_env(env),
        **kwargs,
    )


# -- /proc readings of a process (the benchmarks' CPU and memory figures) ----------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, key: str) -> int:
    """A kB field of /proc/PID/status (VmRSS, VmHWM…), 0 when absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0
