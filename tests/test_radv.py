"""RAdv without the kernel: the RS/RA codec, the schedule on a task.Clock, and the
service against a fake netlink and a fake socket (the real ones: test_radv_netns.py)."""

from __future__ import annotations

import dataclasses
import errno
import itertools
import os
import random
import subprocess
import sys
import tempfile

from twisted.internet import task
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests import scrape
from tests.helpers import ROOT
from ygg import config, features
from ygg.errors import DecodeError
from ygg.interfaces import IFeature
from ygg.popura.meshname import MeshnameConfig
from ygg.popura.radv import RAdvConfig, ndp
from ygg.popura.radv import feature as radv_feature
from ygg.popura.radv import service as radv_module
from ygg.popura.radv.service import (
    Advertiser,
    Link,
    RAdvService,
    advertisement,
    gateway_address,
    next_interval,
)

SUBNET = bytes.fromhex("0300307449278c8d")
MAC = bytes.fromhex("1e6941a5f67c")
LINK_LOCAL = bytes.fromhex("fe800000000000001c6941fffea5f67c")
CLIENT = bytes.fromhex("fe800000000000009c527ffffe2f0a71")

# The advertisement of spec popura §2.3, written out by hand: header, prefix information,
# source link-layer address, route information for 200::/7, RDNSS naming the link-local.
GOLDEN = bytes.fromhex(
    # RA: type 134, code 0, checksum (the kernel's), hop limit 64, flags 0, router lifetime 0,
    # reachable time 0, retrans timer 0
    "86 00 0000 40 00 0000 00000000 00000000"
    # Prefix Information: /64, L+A, valid 86400, preferred 14400, reserved, 16-byte prefix
    "03 04 40 c0 00015180 00003840 00000000 0300307449278c8d 0000000000000000"
    # Source Link-Layer Address
    "01 01 1e6941a5f67c"
    # Route Information: /7, preference medium, lifetime 1800, 8 prefix bytes (200::)
    "18 02 07 00 00000708 0200000000000000"
    # RDNSS: reserved, lifetime infinite, the link-local address
    "19 03 0000 ffffffff fe800000000000001c6941fffea5f67c"
)


class CodecTests(SynchronousTestCase):
    def test_advertisement_matches_the_spec_byte_for_byte(self) -> None:
        ra = advertisement(SUBNET, default_router=False, mac=MAC, dns_server=LINK_LOCAL)
        data = ndp.encode_router_advertisement(ra)
        self.assertEqual(data.hex(), GOLDEN.hex())
        self.assertEqual(len(data), 96)  # Popura's maximum: every option present
        self.assertEqual(ndp.decode_router_advertisement(data), ra)

    def test_default_router_has_a_lifetime_and_no_route_option(self) -> None:
        ra = advertisement(SUBNET, default_router=True, mac=MAC)
        decoded = ndp.decode_router_advertisement(ndp.encode_router_advertisement(ra))
        self.assertEqual(decoded.router_lifetime, 1800)
        self.assertIsNone(decoded.option(ndp.RouteInformation))
        self.assertIsNone(decoded.option(ndp.RecursiveDNSServer))
        self.assertEqual(
            [type(o) for o in decoded.options], [ndp.PrefixInformation, ndp.SourceLinkLayerAddress]
        )

    def test_no_link_layer_option_without_a_mac(self) -> None:
        data = ndp.encode_router_advertisement(advertisement(SUBNET, default_router=False))
        self.assertIsNone(ndp.decode_router_advertisement(data).option(ndp.SourceLinkLayerAddress))
        self.assertEqual(len(data), 16 + 32 + 16)

    def test_farewell_zeroes_every_lifetime(self) -> None:
        for default_router in (False, True):
            ra = ndp.decode_router_advertisement(
                ndp.encode_router_advertisement(
                    advertisement(
                        SUBNET,
                        default_router=default_router,
                        mac=MAC,
                        dns_server=LINK_LOCAL,
                        final=True,
                    )
                )
            )
            self.assertEqual(ra.router_lifetime, 0)
            pio = ra.option(ndp.PrefixInformation)
            self.assertEqual((pio.valid_lifetime, pio.preferred_lifetime), (0, 0))
            self.assertEqual(pio.prefix, SUBNET + bytes(8))
            self.assertEqual(ra.option(ndp.RecursiveDNSServer).lifetime, 0)
            rio = ra.option(ndp.RouteInformation)
            self.assertEqual(rio is None, default_router)
            if rio is not None:
                self.assertEqual(rio.lifetime, 0)

    def test_gateway_address(self) -> None:
        self.assertEqual(gateway_address(SUBNET), SUBNET + bytes(7) + b"\x01")

    def test_route_information_sizes(self) -> None:
        for length, size in ((0, 8), (7, 16), (64, 16), (65, 24), (128, 24)):
            option = ndp.RouteInformation(bytes([0xFF] * 16), length, ndp.PREFERENCE_HIGH, 5)
            data = ndp.encode_option(option)
            self.assertEqual(len(data), size, length)
            (decoded,) = ndp.decode_options(data, 0)
            self.assertEqual(decoded.length, length)
            # bits past the prefix length are cleared on the wire
            self.assertEqual(int.from_bytes(decoded.prefix, "big").bit_count(), length)
            self.assertEqual(decoded.preference, ndp.PREFERENCE_HIGH)

    def test_unknown_options_are_kept(self) -> None:
        ra = ndp.RouterAdvertisement(options=(ndp.UnknownOption(5, bytes(6)),))  # MTU option
        self.assertEqual(ndp.decode_router_advertisement(ndp.encode_router_advertisement(ra)), ra)

    def test_router_solicitations(self) -> None:
        bare = ndp.encode_router_solicitation(ndp.RouterSolicitation())
        self.assertEqual(bare, bytes.fromhex("8500000000000000"))
        self.assertEqual(
            ndp.decode_router_solicitation(bare, CLIENT, 255), ndp.RouterSolicitation()
        )
        with_lla = ndp.RouterSolicitation((ndp.SourceLinkLayerAddress(MAC),))
        data = ndp.encode_router_solicitation(with_lla)
        self.assertEqual(data.hex(), "850000000000000001011e6941a5f67c")
        self.assertEqual(ndp.decode_router_solicitation(data, CLIENT, 255), with_lla)
        # Without the IPv6 header's details, only the message itself is checked.
        self.assertEqual(ndp.decode_router_solicitation(data), with_lla)
        # A host without an address yet solicits from :: without a link-layer address.
        self.assertEqual(ndp.decode_router_solicitation(bare, bytes(16), 255).options, ())

    def test_malformed_router_solicitations(self) -> None:
        good = bytes.fromhex("8500000000000000")
        cases = {
            "empty": (b"", CLIENT, 255),
            "short": (good[:7], CLIENT, 255),
            "not an RS": (bytes([134]) + good[1:], CLIENT, 255),
            "code 1": (bytes([133, 1]) + good[2:], CLIENT, 255),
            "hop limit 254": (good, CLIENT, 254),
            "hop limit 1": (good, CLIENT, 1),
            "option of length 0": (good + bytes.fromhex("0100") + MAC, CLIENT, 255),
            "option past the end": (good + bytes.fromhex("0102") + MAC, CLIENT, 255),
            "half an option header": (good + b"\x01", CLIENT, 255),
            "link-layer address from ::": (good + bytes.fromhex("0101") + MAC, bytes(16), 255),
        }
        for name, (data, source, hop_limit) in cases.items():
            with self.assertRaises(DecodeError, msg=name):
                ndp.decode_router_solicitation(data, source, hop_limit)

    def test_malformed_advertisement_options(self) -> None:
        header = ndp.encode_router_advertisement(ndp.RouterAdvertisement())
        for name, option in {
            "PIO of length 3": bytes([3, 3]) + bytes(22),
            "PIO /129": bytes([3, 4, 129]) + bytes(29),
            "RDNSS of length 2": bytes([25, 2]) + bytes(14),
            "RIO of length 4": bytes([24, 4]) + bytes(30),
            "RIO /65 in 16 bytes": bytes([24, 2, 65]) + bytes(13),
            "RIO /7 in 8 bytes": bytes([24, 1, 7]) + bytes(5),
            "RIO reserved preference": bytes([24, 1, 0, 0x10]) + bytes(4),
        }.items():
            with self.assertRaises(DecodeError, msg=name):
                ndp.decode_router_advertisement(header + option)
        with self.assertRaises(DecodeError):
            ndp.decode_router_advertisement(header[:12])


class ScheduleTests(SynchronousTestCase):
    def advertiser(self, seed: int = 1) -> tuple[task.Clock, list[float], Advertiser]:
        clock = task.Clock()
        sent: list[float] = []
        return (
            clock,
            sent,
            Advertiser(clock, lambda: sent.append(clock.seconds()), random.Random(seed)),
        )

    def test_intervals(self) -> None:
        rng = random.Random(7)
        for waits in range(3):
            self.assertEqual({next_interval(rng, waits) for _ in range(200)}, {16})
        later = [next_interval(rng, 3 + i) for i in range(2000)]
        self.assertTrue(all(isinstance(d, int) and 200 <= d <= 600 for d in later))
        self.assertLess(min(later), 210)
        self.assertGreater(max(later), 590)

    def test_start_then_16_s_three_times_then_200_to_600(self) -> None:
        for seed in range(20):
            clock, sent, adv = self.advertiser(seed)
            adv.start()
            self.assertEqual(sent, [0])
            clock.pump([1] * 48)
            self.assertEqual(sent, [0, 16, 32, 48])
            clock.pump([1] * 6000)
            gaps = [b - a for a, b in itertools.pairwise(sent[3:])]
            self.assertGreaterEqual(len(gaps), 10)
            self.assertTrue(all(200 <= g <= 600 for g in gaps), gaps)

    def test_solicited_at_once_then_at_most_one_per_3_s(self) -> None:
        clock, sent, adv = self.advertiser()
        adv.start()
        clock.advance(5)
        adv.solicited()
        self.assertEqual(sent, [0, 5])
        # A burst right after: one answer, 3 s after the last advertisement.
        clock.advance(1)
        for _ in range(50):
            adv.solicited()
        self.assertEqual(sent, [0, 5])
        clock.advance(1.5)
        adv.solicited()
        self.assertEqual(sent, [0, 5])
        clock.advance(0.5)
        self.assertEqual(sent, [0, 5, 8])
        clock.advance(3)
        adv.solicited()
        self.assertEqual(sent, [0, 5, 8, 11])
        clock.advance(5)  # the periodic one is unaffected
        self.assertEqual(sent, [0, 5, 8, 11, 16])

    def test_stop_cancels_everything(self) -> None:
        clock, sent, adv = self.advertiser()
        adv.solicited()  # not started: nothing
        self.assertEqual(sent, [])
        adv.start()
        clock.advance(1)
        adv.solicited()
        self.assertTrue(adv.running)
        adv.stop()
        self.assertFalse(adv.running)
        self.assertEqual(clock.getDelayedCalls(), [])
        adv.solicited()
        clock.advance(1000)
        self.assertEqual(sent, [0])


# --------------------------------------------------------------------------- the service


class FakeNetlink:
    def __init__(self, *links: Link) -> None:
        self.links = {link.name: link for link in links}
        self.addresses: dict[int, set[tuple[bytes, int]]] = {}
        self.calls: list[str] = []
        self.add_error: OSError | None = None

    def link(self, name: str) -> Link | None:
        self.calls.append(f"link {name}")
        return self.links.get(name)

    def add_address(self, index: int, address: bytes, length: int) -> bool:
        self.calls.append("add")
        if self.add_error is not None:
            raise self.add_error
        held = self.addresses.setdefault(index, set())
        if (address, length) in held:
            return False
        held.add((address, length))
        return True

    def remove_address(self, index: int, address: bytes, length: int) -> None:
        self.calls.append("remove")
        self.addresses[index].remove((address, length))


class FakeSocket:
    def __init__(self, index: int, link_local: bytes, received) -> None:
        self.index, self.link_local, self.received = index, link_local, received
        self.sent: list[bytes] = []
        self.closed = False
        self.fail: OSError | None = None

    def send(self, message: bytes) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(message)

    def close(self) -> None:
        self.closed = True


class FakeNode:
    def __init__(self, running=(), meshname_listen: str = "[::1]:53535") -> None:
        self.reactor = MemoryReactorClock()
        self.config = config.parse("{}")[0]
        self.collectors: list = []
        self.subnet = SUBNET
        self._running = list(running)
        self._meshname = MeshnameConfig(enable=True, listen=meshname_listen)

    def features(self) -> list[str]:
        return list(self._running)

    def register_metrics(self, collector) -> bool:
        self.collectors.append(collector)  # what a scrape would collect
        return True

    def feature_config(self, name: str):
        return self._meshname if name == "meshname" and name in self._running else None


ETH0 = Link(index=2, name="eth0", mac=MAC, link_local=LINK_LOCAL)


class Captured:
    def __init__(self, test: SynchronousTestCase) -> None:
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        test.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def lines(self, level: str | None = None) -> list[str]:
        return [
            formatEvent(e) for e in self.events if level is None or e["log_level"].name == level
        ]

    def radv(self) -> list[str]:
        return [line for line in self.lines() if "RAdv" in line]


class ServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.log = Captured(self)
        fd, self.forwarding = tempfile.mkstemp()
        os.write(fd, b"1\n")
        os.close(fd)
        self.addCleanup(os.unlink, self.forwarding)

    def service(
        self,
        *,
        node: FakeNode | None = None,
        netlink: FakeNetlink | None = None,
        platform: str = "linux",
        **settings,
    ) -> RAdvService:
        self.node = node or FakeNode()
        self.netlink = netlink or FakeNetlink(ETH0)
        self.sockets: list[FakeSocket] = []

        def open_socket(index, link_local, received):
            sock = FakeSocket(index, link_local, received)
            self.sockets.append(sock)
            return sock

        section = RAdvConfig(enable=True, **settings)
        return RAdvService(
            self.node,
            section,
            netlink=self.netlink,
            open_socket=open_socket,
            platform=platform,
            rng=random.Random(3),
            forwarding_path=self.forwarding,
        )

    def started(self, **kwargs) -> tuple[RAdvService, FakeSocket]:
        service = self.service(**kwargs)
        service.startService()
        self.assertTrue(service.advertising, self.log.lines())
        return service, self.sockets[0]

    def test_the_feature_plugin(self) -> None:
        verifyObject(IFeature, radv_feature)
        self.assertIn("radv", [f.name for f in features.discover().features])
        self.assertEqual(radv_feature.section, "RAdv")
        service = radv_feature.makeService(FakeNode(), RAdvConfig(enable=True))
        self.assertIsInstance(service, RAdvService)

    def test_the_plugin_module_is_cheap(self) -> None:
        code = (
            "import sys, ygg.popura.radv; "
            "bad = [m for m in ('ygg.popura.radv.service', 'pyroute2') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

    def test_start_advertise_stop(self) -> None:
        service, sock = self.started(dns=True)
        self.assertEqual((sock.index, sock.link_local), (2, LINK_LOCAL))
        self.assertIn(sock, self.node.reactor.getReaders())
        self.assertEqual(sock.sent, [GOLDEN])
        self.assertEqual(self.netlink.addresses[2], {(gateway_address(SUBNET), 64)})
        self.assertEqual(
            self.log.lines("info"),
            [
                "Started RAdv on fe80::1c69:41ff:fea5:f67c%eth0: advertising "
                "300:3074:4927:8c8d::/64 and 200::/7, with itself as DNS server"
            ],
        )
        self.node.reactor.advance(16)
        self.assertEqual(sock.sent, [GOLDEN] * 2)

        service.stopService()
        farewell = ndp.decode_router_advertisement(sock.sent[-1])
        self.assertEqual(farewell.router_lifetime, 0)
        self.assertEqual(farewell.option(ndp.RouteInformation).lifetime, 0)
        self.assertEqual(farewell.option(ndp.PrefixInformation).valid_lifetime, 0)
        self.assertTrue(sock.closed)
        self.assertNotIn(sock, self.node.reactor.getReaders())
        self.assertEqual(self.netlink.addresses[2], set())
        self.assertEqual(self.node.reactor.getDelayedCalls(), [])
        self.assertEqual(self.log.lines("warn") + self.log.lines("error"), [])

    def test_default_router_without_gateway(self) -> None:
        service, sock = self.started(default_router=True, set_gateway_ip=False)
        ra = ndp.decode_router_advertisement(sock.sent[0])
        self.assertEqual(ra.router_lifetime, 1800)
        self.assertIsNone(ra.option(ndp.RouteInformation))
        self.assertNotIn("add", self.netlink.calls)
        service.stopService()
        self.assertEqual(ndp.decode_router_advertisement(sock.sent[-1]).router_lifetime, 0)
        self.assertNotIn("remove", self.netlink.calls)

    def test_answers_solicitations_and_ignores_malformed_ones(self) -> None:
        service, sock = self.started()
        clock = self.node.reactor
        clock.advance(5)
        good = ndp.encode_router_solicitation(ndp.RouterSolicitation())
        sock.received(bytes([133, 1]) + good[2:], CLIENT, 255)  # code 1
        sock.received(good + b"\x01\x00", CLIENT, 255)  # option of length 0
        sock.received(good, CLIENT, 64)  # crossed a router
        sock.received(good, LINK_LOCAL, 255)  # our own
        self.assertEqual(len(sock.sent), 1)
        self.assertEqual(service.stats["malformed"], 3)
        sock.received(good, CLIENT, 255)
        self.assertEqual(len(sock.sent), 2)
        self.assertEqual(service.stats["solicitations"], 1)
        service.stopService()
        sock.received(good, CLIENT, 255)  # after stop: nothing
        self.assertEqual(len(sock.sent), 3)

    def test_metrics(self) -> None:
        """RAs sent, solicitations answered, errors, advertising (docs/metrics.md)."""
        service, sock = self.started()
        self.node.reactor.advance(5)
        good = ndp.encode_router_solicitation(ndp.RouterSolicitation())
        sock.received(good + b"\x01\x00", CLIENT, 255)  # malformed
        sock.received(good, CLIENT, 255)
        (collector,) = self.node.collectors
        found = scrape.samples(scrape.page(collector))
        self.assertEqual(
            {
                (name, dict(labels).get("reason", "")): count
                for (name, labels), count in found.items()
                if dict(labels)["interface"] == "eth0"
            },
            {
                ("ygg_radv_advertisements_total", ""): 2,
                ("ygg_radv_solicitations_total", ""): 1,
                ("ygg_radv_errors_total", "malformed"): 1,
                ("ygg_radv_errors_total", "send"): 0,
                ("ygg_radv_advertising", ""): 1,
            },
        )
        service.stopService()
        found = scrape.samples(scrape.page(collector))
        self.assertEqual(scrape.value(found, "ygg_radv_advertising", interface="eth0"), 0)
        self.assertEqual(scrape.value(found, "ygg_radv_advertisements_total", interface="eth0"), 3)

    def test_unknown_interface(self) -> None:
        service = self.service(interface="eth9")
        service.startService()
        self.assertFalse(service.advertising)
        self.assertEqual(self.sockets, [])
        self.assertEqual(
            self.log.radv(),
            [
                "RAdv: there is no network interface named 'eth9' (RAdv.Interface); "
                "router advertisements are off"
            ],
        )
        service.stopService()
        self.assertEqual(self.netlink.calls, ["link eth9"])

    def test_linux_only(self) -> None:
        service = self.service(platform="freebsd14")
        service.startService()
        self.assertFalse(service.advertising)
        self.assertEqual(self.netlink.calls, [])
        self.assertEqual(
            self.log.radv(),
            ["RAdv: it works on Linux only, and this is freebsd14; router advertisements are off"],
        )
        service.stopService()

    def test_no_permission_for_a_raw_socket(self) -> None:
        service = self.service()

        def refuse(*args):
            raise PermissionError(errno.EPERM, "Operation not permitted")

        service._open_socket = refuse
        service.startService()
        self.assertFalse(service.advertising)
        self.assertNotIn("add", self.netlink.calls)
        (line,) = self.log.lines("error")
        self.assertIn("needs root", line)

    def test_lookup_errors_and_bugs_do_not_reach_the_node(self) -> None:
        def refused(name: str) -> None:
            raise OSError(errno.EACCES, "Permission denied")

        def buggy(name: str) -> None:
            raise ZeroDivisionError

        for lookup in (refused, buggy):
            netlink = FakeNetlink(ETH0)
            netlink.link = lookup
            service = self.service(netlink=netlink)
            service.startService()  # logged, not raised
            self.assertFalse(service.advertising)
            service.stopService()
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(
            self.log.lines("error")[0],
            "RAdv: cannot look up interface 'eth0': Permission denied; "
            "router advertisements are off",
        )

    def test_waits_for_the_link_local_address(self) -> None:
        tentative = dataclasses.replace(ETH0, link_local=None, tentative=True)
        netlink = FakeNetlink(tentative)
        service = self.service(netlink=netlink)
        service.startService()
        self.assertFalse(service.advertising)
        self.node.reactor.advance(1)
        self.node.reactor.advance(1)
        netlink.links["eth0"] = ETH0
        self.node.reactor.advance(1)
        self.assertTrue(service.advertising)
        self.assertEqual(self.log.lines("error"), [])
        self.assertEqual(len(self.log.lines("info")), 2)  # waiting…, started
        service.stopService()

    def test_gives_up_without_a_link_local_address(self) -> None:
        service = self.service(netlink=FakeNetlink(dataclasses.replace(ETH0, link_local=None)))
        service.startService()
        self.node.reactor.pump([1] * 12)
        self.assertFalse(service.advertising)
        self.assertEqual(
            self.log.lines("error"),
            [
                "RAdv: interface eth0 has no usable IPv6 link-local address (is it up, with "
                "IPv6 enabled?); router advertisements are off"
            ],
        )
        self.assertEqual(self.node.reactor.getDelayedCalls(), [])

    def test_stop_while_waiting(self) -> None:
        service = self.service(netlink=FakeNetlink(dataclasses.replace(ETH0, link_local=None)))
        service.startService()
        service.stopService()
        self.assertEqual(self.node.reactor.getDelayedCalls(), [])
        self.node.reactor.advance(30)
        self.assertEqual(self.log.lines("error"), [])

    def test_forwarding_off_warns_once(self) -> None:
        with open(self.forwarding, "w") as f:
            f.write("0\n")
        service = self.service(netlink=FakeNetlink(dataclasses.replace(ETH0, link_local=None)))
        service.startService()
        self.node.reactor.advance(1)
        self.node.reactor.advance(1)
        (warning,) = self.log.lines("warn")
        self.assertIn("IPv6 forwarding is disabled", warning)
        self.assertIn("sysctl -w net.ipv6.conf.all.forwarding=1", warning)
        service.stopService()

    def test_unreadable_forwarding_setting(self) -> None:
        os.unlink(self.forwarding)
        open(self.forwarding, "w").close()
        service = self.service()
        service._forwarding_path = os.path.join(self.forwarding + ".d", "missing")
        service.startService()
        self.assertTrue(service.advertising)
        (warning,) = self.log.lines("warn")
        self.assertIn("to check that IPv6 forwarding is on", warning)
        service.stopService()

    def test_gateway_address_already_there_is_left_alone(self) -> None:
        netlink = FakeNetlink(ETH0)
        netlink.addresses[2] = {(gateway_address(SUBNET), 64)}
        service, _ = self.started(netlink=netlink)
        service.stopService()
        self.assertNotIn("remove", netlink.calls)
        self.assertEqual(netlink.addresses[2], {(gateway_address(SUBNET), 64)})
        self.assertIn("already has 300:3074:4927:8c8d::1/64", " ".join(self.log.lines("info")))

    def test_gateway_address_error_is_logged(self) -> None:
        netlink = FakeNetlink(ETH0)
        netlink.add_error = OSError(errno.EACCES, "Permission denied")
        service, sock = self.started(netlink=netlink)
        (line,) = self.log.lines("error")
        self.assertEqual(
            line, "RAdv: cannot add 300:3074:4927:8c8d::1/64 to eth0: Permission denied"
        )
        self.assertEqual(len(sock.sent), 1)
        service.stopService()
        self.assertNotIn("remove", netlink.calls)

    def test_send_errors_are_reported_once(self) -> None:
        service, sock = self.started()
        sock.fail = OSError(errno.ENETDOWN, "Network is down")
        self.node.reactor.pump([16, 16, 16])
        sock.fail = None
        self.node.reactor.advance(600)
        self.assertEqual(service.stats["send errors"], 3)
        (warning,) = self.log.lines("warn")
        self.assertEqual(
            warning, "RAdv: cannot send a Router Advertisement on eth0: Network is down"
        )
        self.assertIn("RAdv: sending Router Advertisements again", self.log.lines("info"))
        service.stopService()

    def test_mac_less_interface(self) -> None:
        service, sock = self.started(netlink=FakeNetlink(dataclasses.replace(ETH0, mac=None)))
        ra = ndp.decode_router_advertisement(sock.sent[0])
        self.assertIsNone(ra.option(ndp.SourceLinkLayerAddress))
        service.stopService()

    def test_dns_with_meshname_out_of_reach(self) -> None:
        service, _ = self.started(dns=True, node=FakeNode(running=["meshname", "radv"]))
        (warning,) = self.log.lines("warn")
        self.assertIn("Meshname listens on [::1]:53535", warning)
        self.assertIn('set Meshname.Listen to "[::]:53"', warning)
        service.stopService()

    def test_dns_with_meshname_in_reach(self) -> None:
        for listen in ("[::]:53", "[fe80::1c69:41ff:fea5:f67c%eth0]:53", ":53"):
            node = FakeNode(running=["meshname"], meshname_listen=listen)
            service, _ = self.started(dns=True, node=node)
            service.stopService()
        node = FakeNode(running=["meshname"])
        service, _ = self.started(dns=False, node=node)  # no RDNSS: nothing to say
        service.stopService()
        self.assertEqual(self.log.lines("warn"), [])


class SocketFilterTests(SynchronousTestCase):
    def test_filter_passes_router_solicitations_only(self) -> None:
        words = [
            int.from_bytes(radv_module._only_router_solicitations()[i : i + 4], sys.byteorder)
            for i in range(0, 32, 4)
        ]
        passing = [t for t in range(256) if not words[t >> 5] & (1 << (t & 31))]
        self.assertEqual(passing, [133])
