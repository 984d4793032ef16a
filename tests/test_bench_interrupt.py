"""Ctrl-C of a benchmark: it cleans up and says so in one line, without a traceback."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PYTHON, ROOT, require_go, require_root, require_tool
from tests.processes import Process


class InterruptTests(SynchronousTestCase):
    def start(self, script: str) -> Process:
        proc = Process([PYTHON, script], cwd=str(ROOT))
        self.addCleanup(proc.kill)
        return proc

    def children(self, pid: int) -> list[int]:
        path = Path(f"/proc/{pid}/task/{pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def state(self, pid: int) -> str:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return "gone"
        return next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))

    def interrupt(self, proc: Process, script: str) -> None:
        """SIGINT, as Ctrl-C sends it: exit 130 and one last line."""
        proc.proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.stop(sig=0, timeout=60), 130, proc.output)  # signal 0: none
        self.assertNotIn("Traceback", proc.output)
        self.assertNotIn("KeyboardInterrupt", proc.output)
        self.assertEqual(proc.output.strip().splitlines()[-1], f"{script}: interrupted")

    def test_sim_scale(self) -> None:
        proc = self.start("bench/sim_scale.py")
        deadline = time.monotonic() + 30
        while not (sim := self.children(proc.proc.pid)):
            self.assertLess(time.monotonic(), deadline, f"no simulation started:\n{proc.output}")
            time.sleep(0.05)
        self.interrupt(proc, "bench/sim_scale.py")
        time.sleep(0.5)
        for pid in sim:  # the simulation it ran is killed too (a zombie at most, here)
            self.assertIn(self.state(pid), ("gone", "Z"), f"simulation {pid} left running")

    def test_throughput(self) -> None:
        require_root()
        require_go()
        require_tool("iperf3")
        proc = self.start("bench/throughput.py")
        proc.wait_for("round 1/1: go->go", timeout=60)
        tag = f"yb{proc.proc.pid % 10000}n"
        time.sleep(1)  # into starting the nodes
        self.interrupt(proc, "bench/throughput.py")
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        self.assertNotIn(tag, names)  # its namespaces removed
