"""``ygg doctor`` (issue 19) without touching the host: every check fed by a fake host
reader, the peer checks by a fake probe, the address-label decoder by hand-made netlink
payloads, and the output forms.  The same checks on a real kernel, in namespaces, are in
tests/test_doctor_netns.py."""

from __future__ import annotations

import errno
import io
import ipaddress
import json
import os
import shutil
import socket
import stat
import struct
import tempfile
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from ygg import cli
from ygg.doctor import command, configcheck, kernel, labels, peers, ports
from ygg.doctor.check import FAIL, OK, SKIP, WARN, Check
from ygg.errors import ProbeError
from ygg.keys import NodeKey
from ygg.links.interfaces import IFF_LOOPBACK, IFF_MULTICAST, IFF_POINTOPOINT, IFF_UP, Interface

#: Linux's default address-label table (net/ipv6/addrlabel.c), as the kernel lists it.
DEFAULT_LABELS = [
    labels.Label(ipaddress.IPv6Network(prefix), label)
    for prefix, label in (
        ("::1/128", 0),
        ("::/96", 3),
        ("::ffff:0:0/96", 4),
        ("2001::/32", 6),
        ("2001:10::/28", 7),
        ("3ffe::/16", 12),
        ("2002::/16", 2),
        ("fec0::/10", 11),
        ("fc00::/7", 5),
        ("::/0", 1),
    )
]
FIXED_LABELS = [labels.Label(ipaddress.IPv6Network("200::/7"), 10), *DEFAULT_LABELS]
UP = IFF_UP | IFF_MULTICAST


def mode(kind: int, perms: int = 0o755, uid: int = 0) -> os.stat_result:
    return os.stat_result((kind | perms, 0, 0, 1, uid, 0, 0, 0, 0, 0))


def oserror(name: str) -> OSError:
    number = getattr(errno, name)
    return OSError(number, os.strerror(number))


class FakeHost:
    """What the checks read, set by each test; by default a healthy root host."""

    def __init__(self) -> None:
        self.files = {
            "/proc/sys/net/ipv6/conf/all/disable_ipv6": "0\n",
            "/proc/sys/net/ipv6/conf/default/disable_ipv6": "0\n",
            "/proc/sys/net/ipv6/conf/lo/disable_ipv6": "0\n",
            "/proc/self/status": "Name:\tygg\nCapEff:\t000001ffffffffff\n",
        }
        self.stats: dict[str, os.stat_result] = {
            "/proc/sys/net/ipv6": mode(stat.S_IFDIR),
            "/dev/net/tun": mode(stat.S_IFCHR, 0o666),
            "/run": mode(stat.S_IFDIR),
            "/var/run/yggdrasil": mode(stat.S_IFDIR),
        }
        self.open_errors: dict[str, OSError] = {}
        self.read_only: set[str] = set()
        self.uid = 0
        self.links = [
            Interface("lo", 1, IFF_UP | IFF_LOOPBACK, ("127.0.0.1", "::1")),
            Interface("eth0", 2, UP, ("192.0.2.7", "2a01:4f8::2", "fe80::1")),
        ]
        self.labels: Any = list(DEFAULT_LABELS)
        self.sources: dict[str, Any] = {
            "2000::1": "2a01:4f8::2",
            "64:ff9b::c000:201": "2a01:4f8::2",
        }
        self.busy: dict[tuple[str, int], OSError] = {}
        self.owners: dict[tuple[str, int], list[str]] = {}
        self.answering: dict[str, list[str]] = {}
        self.bound: list[tuple[str, str, int, Any]] = []

    def read(self, path: str) -> str | None:
        return self.files.get(path)

    def stat(self, path: str) -> os.stat_result | None:
        return self.stats.get(path)

    def open_error(self, path: str) -> OSError | None:
        return self.open_errors.get(path)

    def access(self, path: str, mode: int) -> bool:
        return path in self.stats and path not in self.read_only

    def euid(self) -> int:
        return self.uid

    def interfaces(self) -> list[Interface]:
        return self.links

    def address_labels(self) -> list[labels.Label]:
        if isinstance(self.labels, OSError):
            raise self.labels
        return self.labels

    def source_for(self, destination: str) -> str:
        found = self.sources.get(destination, oserror("ENETUNREACH"))
        if isinstance(found, OSError):
            raise found
        return found

    def bind_error(self, kind: str, host: str, port: int, *, reuse: Any = None) -> OSError | None:
        self.bound.append((kind, host, port, reuse))
        return self.busy.get((kind, port))

    def port_owners(self, kind: str, port: int) -> list[str]:
        return self.owners.get((kind, port), [])

    def unix_socket_answers(self, path: str) -> bool:
        return path in self.answering

    def unix_owners(self, path: str) -> list[str]:
        return self.answering.get(path, [])


def config(text: str | dict) -> Any:
    from ygg import config as node_config

    data = text if isinstance(text, str) else json.dumps(text)
    return node_config.parse(data)[0]


def statuses(found: list[Check]) -> list[tuple[str, str]]:
    return [(c.name, c.status) for c in found]


# --------------------------------------------------------------------------- kernel


class IPv6Tests(SynchronousTestCase):
    def test_on(self) -> None:
        self.assertEqual(statuses(kernel.ipv6(FakeHost())), [("IPv6", OK)])

    def test_disabled_by_sysctl(self) -> None:
        host = FakeHost()
        for scope in ("all", "default", "lo"):
            host.files[f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6"] = "1\n"
        (check,) = kernel.ipv6(host)
        self.assertEqual(check.status, FAIL)
        self.assertIn("net.ipv6.conf.all.disable_ipv6 = 1", check.detail)
        self.assertTrue(
            check.fix.startswith(
                "sysctl -w net.ipv6.conf.all.disable_ipv6=0 "
                "net.ipv6.conf.default.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0"
            ),
            check.fix,
        )
        self.assertIn("/etc/sysctl.d/", check.fix)

    def test_only_the_default_off(self) -> None:
        host = FakeHost()
        host.files["/proc/sys/net/ipv6/conf/default/disable_ipv6"] = "1"
        (check,) = kernel.ipv6(host)
        self.assertEqual(check.detail, "disabled by sysctl: net.ipv6.conf.default.disable_ipv6 = 1")

    def test_off_at_boot(self) -> None:
        host = FakeHost()
        del host.stats["/proc/sys/net/ipv6"]
        (check,) = kernel.ipv6(host)
        self.assertEqual(check.status, FAIL)
        self.assertIn("ipv6.disable=1", check.fix)


class TunTests(SynchronousTestCase):
    def test_root_with_the_device(self) -> None:
        found = kernel.tun(FakeHost(), None)
        self.assertEqual(statuses(found), [("TUN device", OK), ("TUN permission", OK)])

    def test_no_device(self) -> None:
        host = FakeHost()
        del host.stats["/dev/net/tun"]
        check = kernel.tun(host, None)[0]
        self.assertEqual((check.status, check.detail), (FAIL, "/dev/net/tun does not exist"))
        self.assertIn("modprobe tun", check.fix)

    def test_not_a_device(self) -> None:
        host = FakeHost()
        host.stats["/dev/net/tun"] = mode(stat.S_IFREG)
        check = kernel.tun(host, None)[0]
        self.assertEqual(check.status, FAIL)
        self.assertIn("mknod /dev/net/tun c 10 200", check.fix)

    def test_device_unreadable(self) -> None:
        host = FakeHost()
        host.open_errors["/dev/net/tun"] = oserror("EACCES")
        check = kernel.tun(host, None)[0]
        self.assertEqual(check.detail, "cannot open /dev/net/tun: Permission denied")
        self.assertIn("chmod 0666 /dev/net/tun", check.fix)

    def test_no_cap_net_admin(self) -> None:
        host = FakeHost()
        host.files["/proc/self/status"] = "CapEff:\t000001fffeffefff\n"  # setpriv's -net_admin
        check = kernel.tun(host, None)[1]
        self.assertEqual(check.status, FAIL)
        self.assertTrue(check.detail.startswith("no CAP_NET_ADMIN (uid 0"), check.detail)
        self.assertIn("IfName: none", check.fix)

    def test_not_root(self) -> None:
        host = FakeHost()
        host.uid = 1000
        host.files["/proc/self/status"] = "CapEff:\t0000000000001000\n"  # the capability only
        check = kernel.tun(host, None)[1]
        self.assertEqual(check.status, FAIL)
        self.assertIn("not root (uid 1000)", check.detail)

    def test_off_on_purpose(self) -> None:
        cfg = config({"IfName": "none"})
        self.assertEqual(statuses(kernel.tun(FakeHost(), cfg)), [("TUN", SKIP)])

    def test_a_named_interface_that_exists(self) -> None:
        found = kernel.tun(FakeHost(), config({"IfName": "eth0"}))
        self.assertEqual(found[-1].name, "TUN name")
        self.assertEqual(found[-1].status, WARN)


class LabelTests(SynchronousTestCase):
    def payload(self, prefix: str, label: int, index: int = 0) -> bytes:
        network = ipaddress.IPv6Network(prefix)
        head = struct.pack("=BBBBII", socket.AF_INET6, 0, network.prefixlen, 0, index, 0)
        address = struct.pack("=HH", 20, labels.IFAL_ADDRESS) + network.network_address.packed
        value = struct.pack("=HHI", 8, labels.IFAL_LABEL, label)
        return head + address + value

    def test_parse(self) -> None:
        entry = labels.parse_label(self.payload("200::/7", 10, 3))
        self.assertEqual(entry, labels.Label(ipaddress.IPv6Network("200::/7"), 10, 3))
        self.assertEqual(str(entry), "prefix 200::/7 label 10")

    def test_parse_refuses_what_is_not_an_entry(self) -> None:
        good = self.payload("::/0", 1)
        self.assertIsNone(labels.parse_label(good[:8]))
        self.assertIsNone(labels.parse_label(good[:12]))  # no attributes
        self.assertIsNone(labels.parse_label(bytes([socket.AF_INET]) + good[1:]))
        self.assertIsNone(labels.parse_label(good[:2] + bytes([129]) + good[3:]))

    def test_lookup_is_by_longest_prefix_for_every_interface(self) -> None:
        table = [
            labels.Label(ipaddress.IPv6Network("300::/8"), 40, ifindex=2),
            *FIXED_LABELS,
        ]
        self.assertEqual(labels.label_of(table, ipaddress.IPv6Address("300::1")), 10)
        self.assertEqual(labels.label_of(DEFAULT_LABELS, ipaddress.IPv6Address("300::1")), 1)
        self.assertEqual(labels.label_of(DEFAULT_LABELS, ipaddress.IPv6Address("2001::1")), 6)
        self.assertIsNone(labels.label_of([], ipaddress.IPv6Address("::1")))

    def test_the_fix_picks_a_free_label(self) -> None:
        self.assertEqual(
            labels.fix_commands(DEFAULT_LABELS), ["ip -6 addrlabel add prefix 200::/7 label 10"]
        )
        taken = [labels.Label(ipaddress.IPv6Network("2a00::/16"), 10), *DEFAULT_LABELS]
        self.assertEqual(
            labels.fix_commands(taken), ["ip -6 addrlabel add prefix 200::/7 label 13"]
        )
        wrong = [labels.Label(ipaddress.IPv6Network("200::/7"), 1), *DEFAULT_LABELS]
        self.assertEqual(
            labels.fix_commands(wrong),
            ["ip -6 addrlabel del prefix 200::/7", "ip -6 addrlabel add prefix 200::/7 label 10"],
        )


class SourceAddressTests(SynchronousTestCase):
    def test_default_labels_warn(self) -> None:
        (check,) = kernel.source_address(FakeHost(), None)
        self.assertEqual(check.status, WARN)
        self.assertIn("share label 1 with Internet destinations", check.detail)
        self.assertIn("#1155, #1372", check.detail)
        self.assertTrue(check.fix.startswith("ip -6 addrlabel add prefix 200::/7 label 10;"))

    def test_the_kernel_picking_our_subnet_fails(self) -> None:
        host = FakeHost()
        host.sources["64:ff9b::c000:201"] = "300:1234::1"  # rule 8, as in a namespace
        (check,) = kernel.source_address(host, None)
        self.assertEqual(check.status, FAIL)
        self.assertIn("300:1234::1 for 64:ff9b::c000:201", check.detail)
        self.assertIn("ip -6 addrlabel add prefix 200::/7 label 10", check.fix)

    def test_fixed(self) -> None:
        host = FakeHost()
        host.labels = FIXED_LABELS
        cfg = config({"PrivateKey": NodeKey.generate().private.hex()})
        self.assertEqual(
            kernel.source_address(host, cfg),
            [Check("source address", OK, "200::/7 has its own address label (10)")],
        )

    def test_no_other_source_is_not_a_label_problem(self) -> None:
        host = FakeHost()
        host.labels = FIXED_LABELS
        host.sources = {"2000::1": "201:2::3"}
        (check,) = kernel.source_address(host, None)
        self.assertEqual(check.status, FAIL)
        self.assertIn("global IPv6 address of its own", check.fix)

    def test_the_node_addresses_are_named(self) -> None:
        key = NodeKey.generate()
        cfg = config({"PrivateKey": key.private.hex()})
        from ygg import address as addr

        (check,) = kernel.source_address(FakeHost(), cfg)
        self.assertIn(addr.format_address(addr.address_for_key(key.public)), check.detail)
        self.assertIn(addr.format_subnet(addr.subnet_for_key(key.public)), check.detail)

    def test_unreadable_table(self) -> None:
        host = FakeHost()
        host.labels = oserror("EAFNOSUPPORT")
        (check,) = kernel.source_address(host, None)
        self.assertEqual(check.status, WARN)


# --------------------------------------------------------------------------- ports


class AdminSocketTests(SynchronousTestCase):
    def cfg(self, listen: str) -> Any:
        return config({"AdminListen": listen})

    def test_writable_directory(self) -> None:
        (check,) = ports.admin_socket(FakeHost(), None)
        self.assertEqual(check.status, OK)
        self.assertIn("/var/run/yggdrasil/yggdrasil.sock can be created", check.detail)

    def test_missing_directory_the_node_can_create(self) -> None:
        host = FakeHost()
        (check,) = ports.admin_socket(host, self.cfg("unix:///run/ygg-x/sub/admin.sock"))
        self.assertEqual(check.status, WARN)
        self.assertEqual(
            check.detail, "/run/ygg-x/sub does not exist; the node creates it at start"
        )
        self.assertTrue(check.fix.startswith("mkdir -p /run/ygg-x/sub"))

    def test_missing_directory_that_cannot_be_made(self) -> None:
        host = FakeHost()
        host.uid = 1000
        host.read_only.add("/run")
        (check,) = ports.admin_socket(host, self.cfg("unix:///run/ygg-x/admin.sock"))
        self.assertEqual(check.status, FAIL)
        self.assertIn("uid 1000 cannot create it (/run is not writable)", check.detail)
        self.assertIn("mkdir -p /run/ygg-x && chown", check.fix)

    def test_directory_not_writable(self) -> None:
        host = FakeHost()
        host.uid = 1000
        host.read_only.add("/var/run/yggdrasil")
        (check,) = ports.admin_socket(host, None)
        self.assertEqual(check.status, FAIL)
        self.assertIn("(owner uid 0, mode 0755)", check.detail)

    def test_not_a_directory(self) -> None:
        host = FakeHost()
        host.stats["/run/file"] = mode(stat.S_IFREG)
        (check,) = ports.admin_socket(host, self.cfg("unix:///run/file/admin.sock"))
        self.assertEqual(
            (check.status, check.detail[:30]), (FAIL, "/run/file is not a directory: ")
        )

    def test_a_node_answering_on_it(self) -> None:
        host = FakeHost()
        path = "/var/run/yggdrasil/yggdrasil.sock"
        host.stats[path] = mode(stat.S_IFSOCK)
        host.answering[path] = ["pid 7 (ygg)"]
        running = ports.running_node(host, None)
        self.assertEqual(running, ["pid 7 (ygg)"])
        (check,) = ports.admin_socket(host, None, running)
        self.assertEqual(check.status, WARN)
        self.assertIn("a node runs with it (pid 7 (ygg))", check.detail)

    def test_a_stale_socket_and_a_file(self) -> None:
        host = FakeHost()
        path = "/var/run/yggdrasil/yggdrasil.sock"
        host.stats[path] = mode(stat.S_IFSOCK)
        self.assertEqual(ports.admin_socket(host, None)[0].status, OK)
        host.stats[path] = mode(stat.S_IFREG)
        (check,) = ports.admin_socket(host, None)
        self.assertEqual(check.status, WARN)
        self.assertIn("the node deletes it at start", check.detail)

    def test_tcp_and_none(self) -> None:
        host = FakeHost()
        host.busy[("tcp", 9001)] = oserror("EADDRINUSE")
        (check,) = ports.admin_socket(host, self.cfg("tcp://localhost:9001"))
        self.assertEqual(check.status, FAIL)
        self.assertEqual(host.bound[-1][:3], ("tcp", "127.0.0.1", 9001))
        self.assertEqual(
            statuses(ports.admin_socket(host, self.cfg("none"))), [("admin socket", SKIP)]
        )


class ListenerTests(SynchronousTestCase):
    def test_free_busy_and_any(self) -> None:
        host = FakeHost()
        host.busy[("tcp", 12345)] = oserror("EADDRINUSE")
        host.owners[("tcp", 12345)] = ["pid 99 (nginx)"]
        cfg = config({"Listen": ["tls://[::]:12345", "tcp://127.0.0.1:0", "quic://[::1]:7000"]})
        busy, free = ports.listeners(host, cfg)
        self.assertEqual(busy.status, FAIL)
        self.assertEqual(
            busy.detail, "tcp [::]:12345 (Listen[0] tls://[::]:12345) is in use by pid 99 (nginx)"
        )
        self.assertEqual(busy.fix, "stop that process, or choose another port in Listen")
        self.assertEqual(
            (free.status, free.detail), (OK, "udp [::1]:7000 (Listen[2] quic://[::1]:7000) is free")
        )

    def test_held_by_the_running_node(self) -> None:
        host = FakeHost()
        host.busy[("tcp", 12345)] = oserror("EADDRINUSE")
        host.owners[("tcp", 12345)] = ["pid 7 (ygg)"]
        cfg = config({"Listen": ["tcp://[::]:12345"]})
        (check,) = ports.listeners(host, cfg, ["pid 7 (ygg)"])
        self.assertEqual(check.status, WARN)

    def test_other_errors(self) -> None:
        host = FakeHost()
        host.busy[("tcp", 1)] = oserror("EADDRNOTAVAIL")
        host.busy[("tcp", 80)] = oserror("EACCES")
        cfg = config({"Listen": ["tcp://[2001:db8::9]:1", "tcp://[::]:80"]})
        missing, low = ports.listeners(host, cfg)
        self.assertIn("this host has no such address", missing.detail)
        self.assertIn("CAP_NET_BIND_SERVICE", low.detail)

    def test_bad_uris(self) -> None:
        cfg = config({"Listen": ["bogus://x:1", "quic://[::]:1"], "ProtocolVersions": ["0.4"]})
        bad, quic = ports.listeners(FakeHost(), cfg)
        self.assertEqual(bad.status, FAIL)
        self.assertIn("the node ignores it", bad.detail)
        self.assertIn("v0.5 only", quic.detail)

    def test_unix_listener(self) -> None:
        host = FakeHost()
        host.stats["/run/ygg.sock"] = mode(stat.S_IFSOCK)
        cfg = config({"Listen": ["unix:///run/ygg.sock", "unix:///run/other.sock"]})
        there, free = ports.listeners(host, cfg)
        self.assertEqual((there.status, free.status), (FAIL, OK))

    def test_admin_doors(self) -> None:
        self.assertEqual(ports.endpoint_port("tcp:port=9002:interface=\\:\\:1"), ("::1", 9002))
        self.assertEqual(ports.endpoint_port("tcp:9022"), ("0.0.0.0", 9022))
        self.assertIsNone(ports.endpoint_port("unix:/tmp/x"))
        host = FakeHost()
        cfg = config({"AdminAMP": {"Listen": "tcp:9002:interface=\\:\\:1"}})
        (check,) = ports.admin_endpoints(host, cfg)
        self.assertEqual(check.detail, "tcp [::1]:9002 (AdminAMP.Listen) is free")


class MulticastTests(SynchronousTestCase):
    def test_the_default_finds_eth0(self) -> None:
        found = ports.multicast(FakeHost(), None)
        self.assertEqual(
            found,
            [Check("multicast", OK, "MulticastInterfaces[0] Regex '.*': eth0 (beacon and listen)")],
        )

    def test_nothing_usable(self) -> None:
        host = FakeHost()
        host.links = [
            Interface("lo", 1, IFF_UP | IFF_LOOPBACK, ("::1",)),
            Interface("eth0", 2, IFF_MULTICAST, ("fe80::1",)),
            Interface("eth1", 3, UP, ("192.0.2.1",)),
            Interface("ppp0", 4, UP | IFF_POINTOPOINT, ("fe80::2",)),
        ]
        (check,) = ports.multicast(host, None)
        self.assertEqual(check.status, WARN)
        self.assertIn(
            "lo (no multicast), eth0 (down), eth1 (no IPv6 link-local address), "
            "ppp0 (point-to-point)",
            check.detail,
        )
        self.assertIn("this host has: lo, eth0, eth1, ppp0", check.fix)

    def test_a_fixed_port_and_beacons_port_taken(self) -> None:
        host = FakeHost()
        host.busy[("tcp", 5000)] = oserror("EADDRINUSE")
        host.busy[("udp", 9001)] = oserror("EADDRINUSE")
        cfg = config({"MulticastInterfaces": [{"Regex": "eth", "Port": 5000}]})
        entry, fixed, beacons = ports.multicast(host, cfg)
        self.assertEqual(entry.status, OK)
        self.assertEqual(fixed.status, FAIL)
        self.assertIn("tcp [fe80::1%eth0]:5000", fixed.detail)
        self.assertEqual(beacons.status, FAIL)
        self.assertIn("(multicast beacons)", beacons.detail)
        self.assertEqual(host.bound[-1], ("udp", "::", 9001, True))

    def test_off(self) -> None:
        found = ports.multicast(FakeHost(), config({"MulticastInterfaces": []}))
        self.assertEqual(statuses(found), [("multicast", SKIP)])


class MeshnameTests(SynchronousTestCase):
    def test_port_in_use(self) -> None:
        host = FakeHost()
        host.busy[("udp", 53535)] = oserror("EADDRINUSE")
        cfg = config({"Meshname": {"Enable": True}})
        udp, tcp = ports.meshname(host, cfg)
        self.assertEqual(udp.status, FAIL)
        self.assertEqual(udp.detail, "udp [::1]:53535 (Meshname.Listen) is in use")
        self.assertEqual(
            (tcp.status, tcp.detail), (OK, "tcp [::1]:53535 (Meshname.Listen) is free")
        )

    def test_off(self) -> None:
        self.assertEqual(statuses(ports.meshname(FakeHost(), config({}))), [("meshname", SKIP)])


# --------------------------------------------------------------------------- config


class ConfigTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ygg-doctor-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, text: str) -> str:
        path = os.path.join(self.dir, "ygg.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_none(self) -> None:
        cfg, found = configcheck.load(None, FakeHost())
        self.assertIsNone(cfg)
        self.assertEqual(statuses(found), [("config", SKIP)])

    def test_a_bad_value(self) -> None:
        path = self.write('{ IfMTU: "big" }')
        cfg, (check,) = configcheck.load(path, FakeHost())
        self.assertIsNone(cfg)
        self.assertEqual(check.status, FAIL)
        self.assertEqual(check.detail, f'{path}: IfMTU: expected an integer, got "big"')
        self.assertIn(f"ygg normaliseconf --useconffile {path}", check.fix)

    def test_missing_file(self) -> None:
        _, (check,) = configcheck.load(os.path.join(self.dir, "nope"), FakeHost())
        self.assertEqual(check.status, FAIL)
        self.assertIn("No such file", check.detail)

    def test_what_stops_the_node_when_it_is_built(self) -> None:
        key = NodeKey.generate().private.hex()
        halves = key[:64] + NodeKey.generate().public.hex()
        _, (check,) = configcheck.load(self.write(json.dumps({"PrivateKey": halves})), FakeHost())
        self.assertEqual(check.status, FAIL)
        self.assertIn("PrivateKey: the public key half does not belong", check.detail)
        path = self.write(
            json.dumps({"PrivateKey": key, "Meshname": {"Enable": True, "Listen": "nowhere"}})
        )
        _, (check,) = configcheck.load(path, FakeHost())
        self.assertIn("Meshname.Listen", check.detail)

    def test_a_good_file_with_warnings(self) -> None:
        key = NodeKey.generate()
        text = json.dumps(
            {
                "peers": [],
                "PrivateKey": key.private.hex(),
                "PublicKey": "00" * 32,
                "MulticastInterfaces": [{"Regex": "eth0", "Priority": 300}],
                "RAdv": {"Interfase": "eth0"},
                "Peerz": [],
            }
        )
        cfg, found = configcheck.load(self.write(text), FakeHost())
        self.assertIsNotNone(cfg)
        self.assertEqual(
            statuses(found),
            [("config", OK), ("config", WARN), ("config", WARN), ("normaliseconf", WARN)],
        )
        self.assertIn("RAdv.Interfase: unknown key", found[1].detail)
        self.assertIn("unknown config key 'Peerz' ignored", found[1].detail)
        self.assertIn(f"set PublicKey to {key.public.hex()}", found[2].fix)
        normalise = found[3].detail
        self.assertIn("add 16 keys with their defaults (InterfacePeers, Listen, Admin", normalise)
        self.assertIn("change MulticastInterfaces[0].Priority (300 → 44)", normalise)
        self.assertIn("drop RAdv.Interfase (unknown keys)", normalise)
        self.assertIn("respell peers → Peers", normalise)

    def test_no_private_key(self) -> None:
        _, found = configcheck.load(self.write("{}"), FakeHost())
        self.assertIn(("config", WARN), statuses(found))
        self.assertIn("new identity", found[1].detail)

    def test_normaliseconf_would_change_nothing(self) -> None:
        from ygg import features

        text = features.format_config(config({}), json=True)
        _, found = configcheck.load(self.write(text), FakeHost())
        self.assertEqual(found[-1], Check("normaliseconf", OK, "would change nothing"))

    def test_changes(self) -> None:
        found = configcheck.changes(
            {"A": 1, "b": [{"C": True}], "D": 1}, {"A": 1.0, "B": [{"C": 1}], "E": 2}
        )
        self.assertEqual(found.added, ["E"])
        self.assertEqual(found.dropped, ["D"])
        self.assertEqual(found.respelled, ["b → B"])
        self.assertEqual(found.changed, ["B[0].C (true → 1)"])


# --------------------------------------------------------------------------- peers


class PeerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.answers: dict[tuple[str, str], Deferred] = {}

    def probe(self, uri: Any, version: str, timeout: float) -> Deferred:
        self.calls.append((uri.text, version, timeout))
        return self.answers.setdefault((uri.text, version), Deferred())

    def cfg(
        self, peers_: list[str], versions: tuple[str, ...] = ("0.4", "0.5"), **more: Any
    ) -> Any:
        return config({"Peers": peers_, "ProtocolVersions": list(versions), **more})

    def test_all_at_once_each_with_its_time(self) -> None:
        cfg = self.cfg(
            ["tcp://[::1]:1", "tls://[::1]:2"], InterfacePeers={"eth0": ["tcp://[::1]:3"]}
        )
        result = peers.check_peers(cfg, self.probe, 2.5)
        self.assertEqual(
            self.calls,
            [
                ("tcp://[::1]:1", "0.5", 2.5),
                ("tls://[::1]:2", "0.5", 2.5),
                ("tcp://[::1]:3", "0.5", 2.5),
            ],
        )
        self.answers[("tls://[::1]:2", "0.5")].callback(0.0042)
        self.answers[("tcp://[::1]:3", "0.5")].callback(0.001)
        self.assertNoResult(result)
        # A v0.4 peer: refuses v0.5, then answers v0.4.
        self.answers[("tcp://[::1]:1", "0.5")].errback(
            ProbeError(ProbeError.VERSION, "remote speaks v0.4, not v0.5")
        )
        self.answers[("tcp://[::1]:1", "0.4")].callback(0.002)
        self.assertEqual(
            [c.detail for c in self.successResultOf(result)],
            [
                "tcp://[::1]:1: v0.4 handshake in 2.0 ms",
                "tls://[::1]:2: v0.5 handshake in 4.2 ms",
                "tcp://[::1]:3 (via eth0): v0.5 handshake in 1.0 ms",
            ],
        )

    def test_refuses_our_version(self) -> None:
        cfg = self.cfg(["tcp://[::1]:1"], ("0.5",))
        result = peers.check_peers(cfg, self.probe)
        self.answers[("tcp://[::1]:1", "0.5")].errback(
            ProbeError(ProbeError.VERSION, "remote speaks v0.4, not v0.5")
        )
        (check,) = self.successResultOf(result)
        self.assertEqual(check.status, FAIL)
        self.assertEqual(
            check.detail, "tcp://[::1]:1: refuses our version: remote speaks v0.4, not v0.5"
        )
        self.assertIn('add "0.4" to ProtocolVersions', check.fix)
        self.assertEqual([c[1] for c in self.calls], ["0.5"])

    def test_failures_and_their_fixes(self) -> None:
        kinds = [ProbeError.UNREACHABLE, ProbeError.TIMEOUT, ProbeError.KEY, ProbeError.HANDSHAKE]
        uris = [f"tcp://[::1]:{i + 1}" for i in range(len(kinds))]
        result = peers.check_peers(self.cfg(uris, ("0.4",)), self.probe)
        for uri, kind in zip(uris, kinds, strict=True):
            self.answers[(uri, "0.4")].errback(ProbeError(kind, f"{kind} text"))
        found = self.successResultOf(result)
        self.assertEqual([c.status for c in found], [FAIL] * 4)
        self.assertEqual([c.fix for c in found], [peers._FIXES[k] for k in kinds])

    def test_what_is_not_probed(self) -> None:
        cfg = self.cfg(
            ["bogus://x", "quic://[::1]:1"],
            ("0.4",),
            InterfacePeers={"eth0": ["tls://[fe80::1]:2"]},
        )
        found = self.successResultOf(peers.check_peers(cfg, self.probe))
        self.assertEqual([c.status for c in found], [FAIL, FAIL, SKIP])
        self.assertIn("unknown call scheme: bogus", found[0].detail)
        self.assertIn("v0.5 only", found[1].detail)
        self.assertEqual(self.calls, [])

    def test_password_and_quic_speak_v05_only(self) -> None:
        cfg = self.cfg(["tls://[::1]:1?password=x", "quic://[::1]:2"])
        result = peers.check_peers(cfg, self.probe)
        for uri in ("tls://[::1]:1?password=x", "quic://[::1]:2"):
            self.answers[(uri, "0.5")].errback(ProbeError(ProbeError.VERSION, "remote speaks v0.4"))
        self.assertEqual([c.status for c in self.successResultOf(result)], [FAIL, FAIL])
        self.assertEqual([c[1] for c in self.calls], ["0.5", "0.5"])

    def test_no_peers(self) -> None:
        found = self.successResultOf(peers.check_peers(self.cfg([]), self.probe))
        self.assertEqual(statuses(found), [("peers", SKIP)])

    def test_an_unexpected_error_is_one_line(self) -> None:
        result = peers.check_peers(self.cfg(["tcp://[::1]:1"], ("0.4",)), self.probe)
        self.answers[("tcp://[::1]:1", "0.4")].errback(RuntimeError("boom"))
        (check,) = self.successResultOf(result)
        self.assertEqual(check.detail, "tcp://[::1]:1: the probe failed: boom")


# --------------------------------------------------------------------------- the command


class CommandTests(SynchronousTestCase):
    def test_the_checklist(self) -> None:
        host = FakeHost()
        host.files["/proc/sys/net/ipv6/conf/all/disable_ipv6"] = "1"
        found = self.successResultOf(command.run(None, host, None, None, 1.0))
        self.assertEqual(command.exit_status(found), 1)
        out = io.StringIO()
        command.write_text(found, out, "ygg doctor: no config; checking as uid 0")
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[0], "ygg doctor: no config; checking as uid 0")
        self.assertIn("FAIL  IPv6: disabled by sysctl: net.ipv6.conf.all.disable_ipv6 = 1", lines)
        self.assertIn(
            "      fix: sysctl -w net.ipv6.conf.all.disable_ipv6=0 (and the same in a file in "
            "/etc/sysctl.d/ to keep it)",
            lines,
        )
        self.assertEqual(lines[-1], "1 problem, 1 warning")
        data = command.as_data(found, None, 0)
        self.assertFalse(data["ok"])
        self.assertEqual(data["counts"], {"ok": 4, "warn": 1, "fail": 1, "skip": 2})
        self.assertEqual(data["checks"][1]["name"], "IPv6")

    def test_all_well_is_status_zero(self) -> None:
        host = FakeHost()
        host.labels = FIXED_LABELS
        found = self.successResultOf(command.run(None, host, None, None, 1.0))
        self.assertEqual({c.status for c in found}, {OK, SKIP})
        self.assertEqual(command.exit_status(found), 0)
        self.assertEqual(command.exit_status([Check("x", WARN, "")]), 0)

    def test_peers_are_probed_with_the_config(self) -> None:
        directory = tempfile.mkdtemp(prefix="ygg-doctor-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "ygg.conf")
        key = NodeKey.generate().private.hex()
        with open(path, "w") as f:
            json.dump({"PrivateKey": key, "Peers": ["tcp://[::1]:1"], "IfName": "none"}, f)
        seen = []

        def probe(uri: Any, version: str, timeout: float) -> Deferred:
            seen.append((uri.text, version, timeout))
            return fail(ProbeError(ProbeError.UNREACHABLE, "connection refused"))

        found = self.successResultOf(command.run(None, FakeHost(), path, probe, 3.0))
        self.assertEqual(seen, [("tcp://[::1]:1", "0.5", 3.0)])
        self.assertEqual(found[-1].detail, "tcp://[::1]:1: connection refused")
        self.assertEqual(found[0].detail, f"{path} is valid: the node builds from it")

    def test_registered_as_a_builtin(self) -> None:
        self.assertIn("doctor", cli.COMMANDS)
        self.assertFalse(cli.COMMANDS["doctor"][2])  # not one of yggdrasil's flags

    def test_help(self) -> None:
        out = io.StringIO()
        with self.assertRaises(SystemExit) as done:
            import contextlib

            with contextlib.redirect_stdout(out):
                command.main(["--help"])
        self.assertEqual(done.exception.code, 0)
        self.assertIn("--useconffile", out.getvalue())
        self.assertIn("--json", out.getvalue())
