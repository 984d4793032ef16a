"""Meshname across the mesh: node A resolves a name that node B serves, as Popura does it.

Two ygg nodes in two network namespaces, each with a TUN, peered over a veth.  B serves
its own records on UDP port 53 of its mesh address; A's meshname server answers a
question for B's name by asking B there, through A's TUN and the mesh (root needed).
The nodes run both versions (their link is then v0.5), or v0.5 alone: meshname is the
same feature on either, the node carries its packets over v0.5 sessions.
"""

from __future__ import annotations

import subprocess
import time

from tests.helpers import require_root, require_tool
from tests.nodes import BOTH_VERSIONS, NetnsPair, YggNode
from tests.test_interop_links import InteropCase
from tests.test_meshname_server import dig_args, parse_dig
from ygg.popura.meshname.names import domain_from_ip


class RemoteResolutionTests(InteropCase):
    def test_name_served_by_another_node(self) -> None:
        self.remote_resolution(BOTH_VERSIONS)

    def test_name_served_over_v05_only(self) -> None:
        self.remote_resolution(("0.5",))

    def remote_resolution(self, versions: tuple[str, ...]) -> None:
        require_root()
        dig = require_tool("dig")
        pair = NetnsPair().up()
        self.addCleanup(pair.down)
        b = YggNode(
            f"{self.dir}/b",
            netns=pair.b,
            tun="ygg0",
            listen=[f"tcp://[{pair.IP_B}]:14001"],
            versions=versions,
        )
        label = domain_from_ip(b.address_bytes())
        b.config["Meshname"] = {
            "Enable": True,
            "Listen": "[::]:53",
            "Config": {
                label: [
                    f'www.{label}.meshname. TXT "served by B"',
                    f"{label}.meshname. AAAA {b.address_text()}",
                ]
            },
        }
        b.start()
        self.addCleanup(b.stop)
        a = YggNode(
            f"{self.dir}/a",
            netns=pair.a,
            tun="ygg0",
            peers=[f"tcp://[{pair.IP_B}]:14001"],
            versions=versions,
            extra={"Meshname": {"Enable": True, "Listen": "[::1]:53535"}},
        )
        a.start()
        self.addCleanup(a.stop)
        (link,) = a.wait_peer(b.key)
        # The link is v0.5 (a v0.5-only node's getPeers is 0.5.12's, which has no version).
        self.assertEqual(link.get("version", "0.5"), "0.5")
        self.assertIn("routing_entries", a.ctl("getSelf"))
        if versions == ("0.5",):
            self.assertNotIn("coords", a.ctl("getSelf"))

        def ask(name: str, rtype: str) -> dict:
            done = pair.exec(pair.a, dig, *dig_args(53535, name, rtype, "+time=8"), timeout=60)
            return parse_dig(done.stdout)

        reply = ask(f"www.{label}.meshname", "TXT")
        self.assertEqual(reply["status"], "NOERROR", reply["text"])
        self.assertEqual([r[3] for r in reply["answers"]], ['"served by B"'])
        reply = ask(f"{label}.meshname", "AAAA")
        self.assertEqual([r[3] for r in reply["answers"]], [b.address_text()])
        # B's own NXDOMAIN comes back as it is.
        self.assertEqual(ask(f"nothing.{label}.meshname", "TXT")["status"], "NXDOMAIN")
        # B gone: A gives up with SERVFAIL instead of hanging or answering empty.
        b.stop()
        started = time.monotonic()
        self.assertEqual(ask(f"www.{label}.meshname", "TXT")["status"], "SERVFAIL")
        self.assertLess(time.monotonic() - started, 10)

    def test_no_tun_no_forwarding(self) -> None:
        """Without a TUN a meshname question for another node fails at once (SERVFAIL):
        the host would otherwise send it wherever its routing table says."""
        dig = require_tool("dig")
        node = self.ours("a", extra={"Meshname": {"Enable": True, "Listen": "[::1]:0"}})
        port = int(node.log.split("Meshname DNS server listening on [::1]:")[1].split()[0])
        other = domain_from_ip(bytes.fromhex("0200" + "11" * 14))
        started = time.monotonic()
        done = subprocess.run(
            [dig, *dig_args(port, f"www.{other}.meshname", "AAAA")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(parse_dig(done.stdout)["status"], "SERVFAIL")
        self.assertLess(time.monotonic() - started, 2)
