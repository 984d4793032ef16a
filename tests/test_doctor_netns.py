"""``ygg doctor`` as a user runs it, on a real kernel: each problem of issue 19 made for real
in a network namespace of the test's own (IPv6 off, no CAP_NET_ADMIN, a TUN device that is
not one, a peer refusing our version, a port in use, an admin socket directory that cannot
be made, a 300::/64 address picked for Internet traffic) and reported with its fix.

The namespace tests need root (namespaces, setpriv, mounts); they skip otherwise unless
YGG_REQUIRE_INTEROP=1.  The checks' logic is tested without the host in tests/test_doctor.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import YGG, require_go, require_root, require_tool
from tests.nodes import GoNode, Netns, remove_tree, short_tempdir
from tests.processes import run
from ygg.keys import NodeKey

#: A port inside the test's own namespace: nothing else listens there.
PORT = 12345


class OneNetns(Netns):
    """One namespace of the test's own (loopback up, IPv6 on), removed by ``down``."""

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix)
        self.name = f"{self.prefix}n"

    def up(self) -> OneNetns:
        try:
            self._add(self.name)
        except BaseException:
            self.down()
            raise
        return self


def checks(data: dict[str, Any], name: str) -> list[dict[str, str]]:
    return [c for c in data["checks"] if c["name"] == name]


class DoctorCase(SynchronousTestCase):
    """A directory with a config, and ``ygg doctor`` run on it (in a namespace)."""

    ns: str | None = None

    def setUp(self) -> None:
        self.dir = short_tempdir("ydoc")
        self.addCleanup(remove_tree, self.dir)
        self.config: dict[str, Any] = {
            "PrivateKey": NodeKey.generate().private.hex(),
            "Listen": [],
            "Peers": [],
            "AdminListen": f"unix://{self.dir}/admin.sock",
            "IfName": "auto",
            "MulticastInterfaces": [],
        }

    def namespace(self) -> str:
        require_root()
        netns = OneNetns("ydoc").up()
        self.addCleanup(netns.down)
        self.ns = netns.name
        return netns.name

    def in_ns(self, *argv: str) -> subprocess.CompletedProcess:
        assert self.ns is not None
        done = run(["ip", "netns", "exec", self.ns, *argv])
        self.assertEqual(done.returncode, 0, f"{argv}: {done.stderr}")
        return done

    def doctor(self, *wrap: str, text: bool = False) -> tuple[int, Any]:
        """``ygg doctor --config FILE`` (``--json`` unless ``text``), in the namespace if
        there is one, under ``wrap`` (setpriv, unshare…): its exit status and output."""
        path = os.path.join(self.dir, "ygg.conf")
        with open(path, "w") as f:
            json.dump(self.config, f)
        argv = [*wrap, YGG, "doctor", "--config", path, "--timeout", "5"]
        argv += [] if text else ["--json"]
        if self.ns:
            argv = ["ip", "netns", "exec", self.ns, *argv]
        done = run(argv, timeout=60)
        self.assertEqual(done.stderr, "")
        self.assertIn(done.returncode, (0, 1), done.stdout)
        return done.returncode, done.stdout if text else json.loads(done.stdout)


class KernelTests(DoctorCase):
    def test_ipv6_disabled(self) -> None:
        self.namespace()
        self.in_ns("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        code, data = self.doctor()
        self.assertEqual(code, 1)
        (check,) = checks(data, "IPv6")
        self.assertEqual(check["status"], "fail")
        self.assertIn("net.ipv6.conf.all.disable_ipv6 = 1", check["detail"])
        self.assertTrue(
            check["fix"].startswith("sysctl -w net.ipv6.conf.all.disable_ipv6=0"), check["fix"]
        )

    def test_no_cap_net_admin(self) -> None:
        """Root without CAP_NET_ADMIN (dropped by setpriv, as systemd's
        CapabilityBoundingSet= or a container would): no TUN; the text form shows it."""
        self.namespace()
        setpriv = require_tool("setpriv")
        drop = [setpriv, "--inh-caps=-net_admin", "--bounding-set=-net_admin", "--"]
        code, out = self.doctor(*drop, text=True)
        self.assertEqual(code, 1)
        lines = out.splitlines()
        self.assertIn(f"config {self.dir}/ygg.conf; checking as uid 0", lines[0])
        (line,) = [i for i, text in enumerate(lines) if text.startswith("FAIL  TUN permission")]
        self.assertIn("no CAP_NET_ADMIN (uid 0", lines[line])
        self.assertTrue(lines[line + 1].startswith("      fix: run the node as root with"))
        self.assertIn("or set IfName: none", lines[line + 1])
        self.assertTrue(any(text.startswith("OK    IPv6: on") for text in lines), lines)
        # With its capability, the same host is fine.
        code, data = self.doctor()
        self.assertEqual([c["status"] for c in checks(data, "TUN permission")], ["ok"])

    def test_a_tun_device_that_is_not_one(self) -> None:
        """/dev/net/tun replaced by a plain file in a mount namespace of the command's own."""
        self.namespace()
        unshare = require_tool("unshare")
        plain = os.path.join(self.dir, "not-a-device")
        open(plain, "w").close()
        script = f'mount --bind "{plain}" /dev/net/tun && exec "$@"'
        code, data = self.doctor(unshare, "--mount", "--", "sh", "-c", script, "sh")
        self.assertEqual(code, 1)
        (check,) = checks(data, "TUN device")
        self.assertEqual(check["status"], "fail")
        self.assertEqual(check["detail"], "/dev/net/tun is not a character device")
        self.assertIn("mknod /dev/net/tun c 10 200", check["fix"])
        self.assertTrue(stat.S_ISCHR(os.stat("/dev/net/tun").st_mode))  # the host's is untouched

    def test_source_address_for_internet_traffic(self) -> None:
        """A LAN with a global address and a node's 300::/64 on it (as RAdv makes it): the
        kernel picks the 300:: address for NAT64 destinations (RFC 6724 rule 8); the doctor
        says so and gives the command, which, run, settles it."""
        self.namespace()
        self.in_ns("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
        for iface in ("lan0", "lan1"):
            self.in_ns("ip", "link", "set", iface, "up")
        for address in ("2001:db8:5::2/64", "300:1234::1/64"):
            self.in_ns("ip", "addr", "add", address, "dev", "lan0", "nodad")
        self.in_ns("ip", "-6", "route", "add", "default", "via", "2001:db8:5::1", "dev", "lan0")
        self.config["IfName"] = "none"
        code, data = self.doctor()
        (check,) = checks(data, "source address")
        self.assertEqual(check["status"], "fail", check)
        self.assertIn("300:1234::1 for 64:ff9b::c000:201", check["detail"])
        self.assertTrue(check["fix"].startswith("ip -6 addrlabel add prefix 200::/7 label 10;"))
        self.assertEqual(code, 1)
        self.in_ns(*check["fix"].split(";")[0].split())
        code, data = self.doctor()
        self.assertEqual(
            checks(data, "source address"),
            [
                {
                    "name": "source address",
                    "status": "ok",
                    "detail": "200::/7 has its own address label (10)",
                    "fix": "",
                }
            ],
        )
        self.assertEqual(code, 0, data)


class PortAndPeerTests(DoctorCase):
    def test_a_peer_that_refuses_our_version_and_its_port(self) -> None:
        """A Go 0.4.7 peer configured for a v0.5-only ygg: "refuses our version", with the
        ProtocolVersions fix; our Listen on the port it holds: in use, by whom; a port
        nobody listens on: refused.  With both versions, the same peer answers in v0.4."""
        ns = self.namespace()
        require_go()
        go = GoNode(f"{self.dir}/go", listen=[f"tcp://[::1]:{PORT}"], netns=ns).start()
        self.addCleanup(go.stop)
        self.config["IfName"] = "none"
        self.config["ProtocolVersions"] = ["0.5"]
        self.config["Listen"] = [f"tcp://[::1]:{PORT}"]
        self.config["Peers"] = [f"tcp://[::1]:{PORT}", "tcp://[::1]:1"]
        code, data = self.doctor()
        self.assertEqual(code, 1)
        refused, down = checks(data, "peer")
        self.assertEqual(refused["status"], "fail")
        self.assertIn(f"tcp://[::1]:{PORT}: refuses our version", refused["detail"])
        self.assertIn('add "0.4" to ProtocolVersions', refused["fix"])
        self.assertEqual(down["status"], "fail")
        self.assertIn("refused", down["detail"].lower())
        (port,) = checks(data, "port")
        self.assertEqual(port["status"], "fail")
        self.assertIn(
            f"tcp [::1]:{PORT} (Listen[0] tcp://[::1]:{PORT}) is in use by pid ", port["detail"]
        )
        self.assertIn("(yggdrasil)", port["detail"])
        del self.config["ProtocolVersions"]
        self.config["Peers"] = [f"tcp://[::1]:{PORT}"]
        self.config["Listen"] = []
        code, data = self.doctor()
        (answered,) = checks(data, "peer")
        self.assertEqual(answered["status"], "ok")
        self.assertRegex(
            answered["detail"], rf"^tcp://\[::1\]:{PORT}: v0\.4 handshake in [\d.]+ ms$"
        )
        self.assertEqual(code, 0, data)


class AdminSocketTests(DoctorCase):
    def test_a_directory_that_cannot_be_made(self) -> None:
        """AdminListen in a directory that does not exist: root would make it (a warning);
        another user cannot (a failure), and cannot open a TUN either."""
        self.namespace()
        setpriv = require_tool("setpriv")
        os.chmod(self.dir, 0o755)
        self.config["AdminListen"] = f"unix://{self.dir}/missing/admin.sock"
        code, data = self.doctor()
        (check,) = checks(data, "admin socket")
        self.assertEqual(check["status"], "warn")
        self.assertEqual(
            check["detail"], f"{self.dir}/missing does not exist; the node creates it at start"
        )
        self.assertEqual(code, 0, data)
        nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        code, data = self.doctor(*nobody)
        self.assertEqual((code, data["uid"]), (1, 65534))
        (check,) = checks(data, "admin socket")
        self.assertEqual(check["status"], "fail")
        self.assertIn(
            f"{self.dir}/missing does not exist and uid 65534 cannot create it", check["detail"]
        )
        self.assertIn(f"mkdir -p {self.dir}/missing && chown", check["fix"])
        self.assertIn("fail", [c["status"] for c in checks(data, "TUN permission")])


class ConfigTests(DoctorCase):
    """No root needed: a config that stops the node, reported as a process reports it."""

    def test_a_bad_config(self) -> None:
        self.config["IfMTU"] = "big"
        code, out = self.doctor(text=True)
        self.assertEqual(code, 1)
        path = os.path.join(self.dir, "ygg.conf")
        lines = out.splitlines()
        index = lines.index(f'FAIL  config: {path}: IfMTU: expected an integer, got "big"')
        self.assertEqual(
            lines[index + 1],
            f"      fix: correct it in {path}; ygg normaliseconf --useconffile {path} shows "
            "how ygg reads it",
        )

    def test_a_missing_config(self) -> None:
        path = os.path.join(self.dir, "nowhere.conf")
        done = run([YGG, "doctor", "--useconffile", path, "--json"], timeout=60)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        (check,) = checks(json.loads(done.stdout), "config")
        self.assertEqual(check["status"], "fail")
        self.assertIn(f"{path}: ", check["detail"])
        self.assertIn("No such file", check["detail"])
