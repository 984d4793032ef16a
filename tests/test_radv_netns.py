"""RAdv on a real link: our node (``ygg run``) in a "router" namespace advertises on a veth
to a "client" namespace whose kernel takes the advertisements (accept_ra=2, route
information up to /7), as a LAN host would.  Checked with the client's own addresses and
routes, ndisc6's ``rdisc6``, and a raw-socket probe (tests/ndp_probe.py).

Needs root (namespaces, raw sockets); skips otherwise unless YGG_REQUIRE_INTEROP=1.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PYTHON, ROOT, require_root, require_tool
from tests.nodes import NetnsPair, YggNode, remove_tree, short_tempdir, wait_until
from tests.processes import child_env
from ygg import address as addr
from ygg.popura.radv import ndp

IFACE = NetnsPair.IFACE
RS = ndp.encode_router_solicitation(ndp.RouterSolicitation()).hex()


class RouterAndClient(SynchronousTestCase):
    def setUp(self) -> None:
        require_root()
        self.rdisc6_path = require_tool("rdisc6")
        self.pair = NetnsPair("yra").up()
        self.addCleanup(self.pair.down)
        self.router, self.client = self.pair.a, self.pair.b
        for key, value in (("accept_ra", 2), ("accept_ra_rt_info_max_plen", 7)):
            self.sysctl(self.client, f"net.ipv6.conf.{IFACE}.{key}", value)
        self.dir = short_tempdir("yra")
        self.addCleanup(remove_tree, self.dir)
        self.router_ll = self.pair.link_local(self.router)
        self.router_mac = re.search(
            r"link/ether ([0-9a-f:]{17})", self.ip(self.router, "-o", "link", "show", IFACE)
        ).group(1)

    # -- helpers ------------------------------------------------------------------------------

    def sysctl(self, ns: str, key: str, value: object) -> None:
        done = self.pair.exec(ns, "sysctl", "-q", "-w", f"{key}={value}")
        self.assertEqual(done.returncode, 0, done.stderr)

    def ip(self, ns: str, *argv: str) -> str:
        done = subprocess.run(["ip", "-n", ns, *argv], capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def start(self, *, forwarding: bool = True, **radv: object) -> YggNode:
        self.sysctl(self.router, "net.ipv6.conf.all.forwarding", int(forwarding))
        node = YggNode(
            f"{self.dir}/router",
            netns=self.router,
            loglevel="debug",
            extra={"RAdv": {"Enable": True, "Interface": IFACE, **radv}},
        )
        self.before_start = time.monotonic()
        node.start()
        self.addCleanup(node.stop)
        self.subnet = ipaddress.IPv6Network(
            addr.format_subnet(addr.subnet_for_key(bytes.fromhex(node.key)))
        )
        self.gateway = f"{self.subnet.network_address + 1}/64"
        return node

    def client_slaac_address(self) -> dict | None:
        for line in self.ip(self.client, "-6", "-o", "addr", "show", "dev", IFACE).splitlines():
            found = re.search(r"inet6 ([0-9a-f:]+)/64", line)
            if found and ipaddress.IPv6Address(found.group(1)) in self.subnet:
                return {
                    "address": found.group(1),
                    "tentative": "tentative" in line,
                    "deprecated": "deprecated" in line,
                    "line": line,
                }
        return None

    def client_route(self, prefix: str) -> str:
        return self.ip(self.client, "-6", "route", "show", prefix).strip()

    def router_addresses(self) -> str:
        return self.ip(self.router, "-6", "-o", "addr", "show", "dev", IFACE)

    def rdisc6(self) -> str:
        # -1: the first answer; answers to a burst of solicitations may wait 3 s.
        done = self.pair.exec(
            self.client, self.rdisc6_path, "-1", "-n", "-w", "1500", "-r", "4", IFACE, timeout=30
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        return done.stdout

    def probe_argv(self, *messages: str, listen: float = 0.0, count: int = 0) -> list[str]:
        return [
            "ip",
            "netns",
            "exec",
            self.client,
            PYTHON,
            "-m",
            "tests.ndp_probe",
            "--interface",
            IFACE,
            "--listen",
            str(listen),
            "--count",
            str(count),
            *messages,
        ]

    def probe(self, *messages: str, listen: float = 0.0, count: int = 0) -> list[dict]:
        done = subprocess.run(
            self.probe_argv(*messages, listen=listen, count=count),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=child_env(),
            timeout=listen + 30,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads(done.stdout)

    def field(self, text: str, name: str) -> str:
        found = re.search(rf"^\s*{re.escape(name)}\s*:\s*(.+?)\s*$", text, re.M)
        self.assertIsNotNone(found, f"{name!r} not in rdisc6 output:\n{text}")
        return found.group(1)


class AdvertisingTests(RouterAndClient):
    def test_slaac_route_rdns_then_withdrawal_at_stop(self) -> None:
        """The client autoconfigures an address in our /64 and learns 200::/7 through our
        link-local address; rdisc6 shows every field of the spec's advertisement; at stop
        the gateway address goes and a last advertisement withdraws the route."""
        node = self.start(DNS=True)
        slaac = wait_until(
            lambda: (a := self.client_slaac_address()) and not a["tentative"] and a,
            20,
            "a SLAAC address on the client",
        )
        self.assertFalse(slaac["deprecated"], slaac["line"])
        route = wait_until(lambda: self.client_route("200::/7"), 10, "the route to 200::/7")
        self.assertIn(f"via {self.router_ll} dev {IFACE} proto ra", route)
        self.assertIn(f"inet6 {self.gateway} scope global", self.router_addresses())
        self.assertEqual(self.client_route("default"), "")  # router lifetime 0

        text = self.rdisc6()
        self.assertEqual(self.field(text, "Hop limit").split()[0], "64")
        self.assertEqual(self.field(text, "Stateful address conf."), "No")
        self.assertEqual(self.field(text, "Stateful other conf."), "No")
        self.assertEqual(self.field(text, "Router preference"), "medium")
        self.assertEqual(self.field(text, "Router lifetime").split()[0], "0")
        self.assertEqual(self.field(text, "Prefix"), str(self.subnet))
        self.assertEqual(self.field(text, "On-link"), "Yes")
        self.assertEqual(self.field(text, "Autonomous address conf."), "Yes")
        self.assertEqual(self.field(text, "Valid time").split()[0], "86400")
        self.assertEqual(self.field(text, "Pref. time").split()[0], "14400")
        self.assertEqual(self.field(text, "Route"), "200::/7")
        self.assertEqual(self.field(text, "Route preference"), "medium")
        self.assertEqual(self.field(text, "Route lifetime").split()[0], "1800")
        self.assertEqual(self.field(text, "Recursive DNS server"), self.router_ll)
        self.assertEqual(self.field(text, "DNS server lifetime").split()[0], "infinite")
        self.assertEqual(
            self.field(text, "Source link-layer address").lower(), self.router_mac.lower()
        )
        self.assertIn(f"from {self.router_ll}\n", text)

        log = node.log
        self.assertIn(f"Started RAdv on {self.router_ll}%{IFACE}: advertising {self.subnet}", log)
        self.assertNotIn("forwarding", log)

        # Listen while the node stops: its last word withdraws everything.
        listener = subprocess.Popen(
            self.probe_argv(listen=10.0, count=1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=child_env(),
        )
        time.sleep(1.0)  # the probe's socket is open
        self.assertEqual(node.stop(), 0)
        out, err = listener.communicate(timeout=30)
        heard = json.loads(out or "null")
        self.assertTrue(heard, err)
        farewell = ndp.decode_router_advertisement(bytes.fromhex(heard[-1]["hex"]))
        self.assertEqual(heard[-1]["source"], self.router_ll)
        self.assertEqual(heard[-1]["hop_limit"], 255)
        self.assertEqual(farewell.router_lifetime, 0)
        self.assertEqual(farewell.option(ndp.RouteInformation).lifetime, 0)
        self.assertEqual(farewell.option(ndp.RecursiveDNSServer).lifetime, 0)
        pio = farewell.option(ndp.PrefixInformation)
        self.assertEqual((pio.valid_lifetime, pio.preferred_lifetime), (0, 0))

        self.assertNotIn(self.gateway, self.router_addresses())
        wait_until(lambda: self.client_route("200::/7") == "", 10, "the route to go")
        wait_until(lambda: self.client_route(str(self.subnet)) == "", 10, "the prefix route to go")
        # RFC 4862 §5.5.3 e): the host keeps the address up to 2 h more, deprecated.
        self.assertTrue(self.client_slaac_address()["deprecated"])
        self.assertIn("Stopped RAdv on veth0; hosts were told to stop using this router", node.log)

    def test_default_router_and_forwarding_warning(self) -> None:
        """DefaultRouter: router lifetime 1800 and no route option; the client takes us as
        its default router, until the node stops.  With forwarding off: one warning."""
        node = self.start(forwarding=False, DefaultRouter=True, SetGatewayIP=False)
        default = wait_until(lambda: self.client_route("default"), 20, "a default route")
        self.assertIn(f"via {self.router_ll} dev {IFACE} proto ra", default)
        self.assertEqual(self.client_route("200::/7"), "")
        text = self.rdisc6()
        self.assertEqual(self.field(text, "Router lifetime").split()[0], "1800")
        self.assertEqual(self.field(text, "Prefix"), str(self.subnet))
        self.assertNotIn("Route  ", text)
        self.assertNotIn("200::/7", text)
        self.assertNotIn("Recursive DNS server", text)
        self.assertNotIn(str(self.subnet.network_address + 1), self.router_addresses())

        warnings = [line for line in node.log.splitlines() if "forwarding is disabled" in line]
        self.assertEqual(len(warnings), 1, node.log)
        self.assertIn("sudo sysctl -w net.ipv6.conf.all.forwarding=1", warnings[0])
        self.assertEqual(node.stop(), 0)
        wait_until(lambda: self.client_route("default") == "", 10, "the default route to go")

    def test_malformed_solicitations_are_ignored(self) -> None:
        """Solicitations that fail RFC 4861's checks get no answer (and do not upset the
        node); a proper one from the same host is answered at once, by multicast."""
        node = self.start()
        wait_until(self.client_slaac_address, 20, "the first advertisement to arrive")
        good = bytes.fromhex(RS)
        malformed = [
            bytes([133, 1]) + good[2:],  # code 1
            good + bytes.fromhex("0100") + bytes(6),  # an option of length 0
            good + bytes.fromhex("0102") + bytes(6),  # an option running past the end
            good[:6],  # too short
        ]
        # Plus a proper one that crossed a router (hop limit 64).  One wrongly accepted
        # would be answered within 3 s; the next unsolicited advertisement comes at 16 s.
        heard = self.probe(*(m.hex() for m in malformed), f"{RS}@64", listen=3.5)
        self.assertLess(time.monotonic() - self.before_start, 15, "too slow to tell")
        self.assertEqual(heard, [])
        ignored = [line for line in node.log.splitlines() if "ignored a malformed" in line]
        self.assertEqual(len(ignored), 5, node.log)

        heard = self.probe(RS, listen=3.5, count=1)
        self.assertEqual(len(heard), 1, heard)
        self.assertEqual(heard[0]["source"], self.router_ll)
        self.assertEqual(heard[0]["hop_limit"], 255)
        self.assertLess(heard[0]["after"], 1.0)
        self.assertEqual(node.ctl("getSelf")["key"], node.key)
        self.assertEqual(node.stop(), 0)


class StartFailureTests(SynchronousTestCase):
    def test_unknown_interface_fails_the_feature_with_one_line(self) -> None:
        """No such interface: one error line, the feature is off, the node runs on."""
        directory = short_tempdir("yrb")
        self.addCleanup(remove_tree, directory)
        node = YggNode(directory, extra={"RAdv": {"Enable": True, "Interface": "nosuch0"}})
        node.start()
        self.addCleanup(node.stop)
        self.assertEqual(node.ctl("getSelf")["key"], node.key)
        lines = [line for line in node.log.splitlines() if "RAdv" in line]
        self.assertEqual(len(lines), 1, node.log)
        self.assertTrue(
            lines[0].endswith(
                "RAdv: there is no network interface named 'nosuch0' (RAdv.Interface); "
                "router advertisements are off"
            ),
            lines[0],
        )
        self.assertEqual(node.stop(), 0)
