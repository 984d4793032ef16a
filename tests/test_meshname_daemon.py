"""Meshname in a real node: ``ygg run`` with the feature on, asked with ``dig``."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import YGG, require_go, require_tool
from tests.nodes import YggNode
from tests.processes import Process, run
from tests.test_meshname import LABEL, RECORDS
from tests.test_meshname_server import dig_args, parse_dig

LISTENING = re.compile(r"Meshname DNS server listening on \[::1\]:(\d+) \(UDP and TCP\)")


def dig(port: int, name: str, rtype: str = "AAAA", *extra: str) -> dict:
    done = subprocess.run(
        [require_tool("dig"), *dig_args(port, name, rtype, *extra)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return parse_dig(done.stdout)


class MeshnameNodeTests(SynchronousTestCase):
    def setUp(self) -> None:
        require_go()  # the harness checks the node through yggdrasilctl
        require_tool("dig")
        self.dir = tempfile.mkdtemp(prefix="ygg-meshname-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def node(self, name: str = "a", **meshname: object) -> YggNode:
        section = {"Enable": True, "Listen": "[::1]:0", "Config": {LABEL: RECORDS}}
        section.update(meshname)
        node = YggNode(f"{self.dir}/{name}", extra={"Meshname": section})
        self.addCleanup(node.stop)
        return node

    def port_of(self, log_text: str) -> int:
        match = LISTENING.search(log_text)
        self.assertIsNotNone(match, log_text)
        return int(match.group(1))

    def test_records_over_dig(self) -> None:
        node = self.node().start()
        port = self.port_of(node.log)
        before = node.log
        reply = dig(port, f"{LABEL}.meshname")
        self.assertEqual(reply["status"], "NOERROR")
        self.assertEqual(
            reply["answers"],
            [(f"{LABEL}.meshname.", 3600, "AAAA", "201:1697:567c:1375:3fd1:3a2b:4b85:cd1e")],
        )
        reply = dig(port, f"_http._tcp.{LABEL}.meshname", "SRV")
        self.assertEqual(
            [(a[2], a[3]) for a in reply["answers"]], [("SRV", f"10 5 80 www.{LABEL}.meshname.")]
        )
        reply = dig(port, f"{LABEL}.meshname", "TXT")
        self.assertEqual([a[3] for a in reply["answers"]], ['"hello world" "v=1"'])
        reply = dig(port, f"{LABEL}.meshname", "TXT", "+tcp")
        self.assertEqual([a[3] for a in reply["answers"]], ['"hello world" "v=1"'])
        self.assertEqual(dig(port, f"unknown.{LABEL}.meshname")["status"], "NXDOMAIN")
        self.assertEqual(dig(port, "example.com", "A")["status"], "REFUSED")
        # Nothing was logged per query.
        self.assertEqual(node.log, before)
        self.assertEqual(node.stop(), 0)

    def test_switches_in_both_spellings(self) -> None:
        node = self.node(Enable=False, Listen="[::1]:1")
        node.write_config()
        for argv in (
            [YGG, "run", "--config", node.config_path, "--meshname", "--meshnamelisten", "[::1]:0"],
            [YGG, "-useconffile", node.config_path, "-meshname", "-meshnamelisten=[::1]:0"],
        ):
            proc = Process(argv, cwd=self.dir)
            self.addCleanup(proc.kill)
            proc.wait_for("Your IPv6 subnet is", timeout=30)
            self.assertEqual(
                dig(self.port_of(proc.output), f"{LABEL}.meshname")["status"], "NOERROR"
            )
            self.assertEqual(proc.stop(signal.SIGTERM), 0)
        # Without the switch the feature stays off.
        proc = Process([YGG, "run", "--config", node.config_path], cwd=self.dir)
        self.addCleanup(proc.kill)
        proc.wait_for("meshname (off)", timeout=30)
        proc.stop()

    def test_port_in_use_fails_only_the_feature(self) -> None:
        held = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        held.bind(("::1", 0))
        self.addCleanup(held.close)
        port = held.getsockname()[1]
        node = self.node(Listen=f"[::1]:{port}").start()
        lines = [line for line in node.log.splitlines() if "Meshname" in line]
        self.assertEqual(len(lines), 1, node.log)
        self.assertRegex(
            lines[0],
            rf"Meshname: cannot listen on \[::1\]:{port}: .*; the meshname DNS server is off$",
        )
        self.assertEqual(node.ctl("getSelf")["key"], node.key)  # the node runs on
        self.assertEqual(node.stop(), 0)

    def test_a_bad_record_stops_the_node_with_one_line(self) -> None:
        node = self.node(Config={LABEL: [RECORDS[0], f"x.{LABEL}.meshname. SRV 1 2 http t."]})
        node.write_config()
        done = run([YGG, "run", "--config", node.config_path], timeout=60)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertEqual(
            done.stderr.strip(),
            f"ygg: {node.config_path}: Meshname.Config.{LABEL}[1]: "
            f"'x.{LABEL}.meshname. SRV 1 2 http t.': SRV port: expected a number 0-65535, "
            "got 'http'",
        )

    def test_meshnameconf_of_a_node_config(self) -> None:
        node = self.node()
        node.write_config()
        done = run([YGG, "meshnameconf", "--useconffile", node.config_path, "--json"])
        self.assertEqual(done.returncode, 0, done.stderr)
        address = run([YGG, "address", "--useconffile", node.config_path]).stdout.strip()
        section = json.loads(done.stdout)["Meshname"]
        records = [r for rs in section["Config"].values() for r in rs]
        self.assertIn(f" AAAA {address}", "\n".join(records))
