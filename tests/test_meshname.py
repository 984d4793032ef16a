"""Meshname without sockets: the encoding, the commands, the zone records, the feature, and
the DNS server's answers driven through its protocols with fake transports and a clock."""

from __future__ import annotations

import ipaddress
import json
import struct
import subprocess

from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.names import dns
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests import scrape
from tests.helpers import PYTHON, ROOT
from tests.test_cli import ConfigFileMixin, run_cli
from ygg import address as addr
from ygg import config, features
from ygg.errors import ConfigError
from ygg.interfaces import IFeature
from ygg.keys import NodeKey
from ygg.popura.meshname import MeshnameConfig, targets
from ygg.popura.meshname import feature as meshname_feature
from ygg.popura.meshname.authority import NEGATIVE_TTL
from ygg.popura.meshname.forwarder import UPSTREAM_TIMEOUT, default_upstream
from ygg.popura.meshname.names import (
    MeshnameError,
    address_of_name,
    domain_from_ip,
    format_section,
    ip_from_label,
    parse_listen,
    section_for,
)
from ygg.popura.meshname.protocols import (
    MAX_TCP_CONNECTIONS,
    TCP_IDLE_TIMEOUT,
    StreamServerFactory,
)
from ygg.popura.meshname.service import MeshnameService
from ygg.popura.meshname.wire import MAX_REQUEST, MAX_UDP_REPLY
from ygg.popura.meshname.zone import RecordError, parse_record, parse_zone

VECTORS = [  # spec §3.1
    ("200:6fc8:9220:f400:5cc2:305a:4ac6:967e", "aiag7sesed2aaxgcgbnevruwpy"),
    ("203:f15a:c323:83aa:cdb0:2e84:56b3:e85c", "aib7cwwdeob2vtnqf2cfnm7ilq"),
    ("200:f8b1:f974:967f:dd32:145d:1cc0:3679", "aiaprmpzoslh7xjscrorzqbwpe"),
    ("201:1697:567c:1375:3fd1:3a2b:4b85:cd1e", "aiarnf2wpqjxkp6rhivuxbondy"),
]
LABEL = "aiarnf2wpqjxkp6rhivuxbondy"
ADDRESS = "201:1697:567c:1375:3fd1:3a2b:4b85:cd1e"
REMOTE_LABEL = "aiag7sesed2aaxgcgbnevruwpy"
REMOTE_ADDRESS = "200:6fc8:9220:f400:5cc2:305a:4ac6:967e"
RECORDS = [
    f"{LABEL}.meshname. AAAA {ADDRESS}",
    f"_http._tcp.{LABEL}.meshname. SRV 10 5 80 www.{LABEL}.meshname.",
    f"www.{LABEL}.meshname. 300 AAAA 201:1697:567c:1375:3fd1:3a2b:4b85:1",
    f'{LABEL}.meshname. TXT "hello world" "v=1"',
    f"alias.{LABEL}.meshname. CNAME www.{LABEL}.meshname",
    f"loop.{LABEL}.meshname. CNAME loop.{LABEL}.meshname.",
    f"a.b.{LABEL}.meshname. A 192.0.2.1",
]


class EncodingTests(SynchronousTestCase):
    def test_vectors(self) -> None:
        for address, label in VECTORS:
            self.assertEqual(domain_from_ip(address), label)
            self.assertEqual(domain_from_ip(ipaddress.IPv6Address(address)), label)
            self.assertEqual(domain_from_ip(ipaddress.IPv6Address(address).packed), label)
            self.assertEqual(ip_from_label(label), ipaddress.IPv6Address(address))
            self.assertEqual(ip_from_label(label.upper()), ipaddress.IPv6Address(address))
            self.assertEqual(ip_from_label(label.encode()), ipaddress.IPv6Address(address))

    def test_a_node_address_round_trips(self) -> None:
        key = NodeKey.generate().public
        address = addr.address_for_key(key)
        self.assertEqual(ip_from_label(domain_from_ip(address)).packed, address)

    def test_trailing_bits_are_not_checked(self) -> None:
        # 26 characters carry 130 bits: the last character's low 2 bits are ignored.
        label = VECTORS[0][1]
        for last in "yz23":
            self.assertEqual(ip_from_label(label[:-1] + last), ip_from_label(label))

    def test_errors(self) -> None:
        for bad in ("", "a", LABEL[:-1], LABEL + "a", LABEL[:-1] + "1", LABEL[:-1] + "-",
                    LABEL[:18], "é" * 26, LABEL[:-1] + "="):  # fmt: skip
            with self.assertRaises(MeshnameError, msg=bad):
                ip_from_label(bad)
        for bad in ("1.2.3.4", "nope", b"\x00" * 15):
            with self.assertRaises(MeshnameError):
                domain_from_ip(bad)

    def test_address_of_name(self) -> None:
        self.assertEqual(str(address_of_name(f"test.{LABEL}.meshname.")), ADDRESS)
        self.assertEqual(str(address_of_name(f"{LABEL}.YGG")), ADDRESS)
        self.assertEqual(str(address_of_name(f"{LABEL}.meship")), ADDRESS)
        self.assertEqual(str(address_of_name(LABEL)), ADDRESS)
        with self.assertRaisesRegex(MeshnameError, "not under"):
            address_of_name(f"{LABEL}.example")
        cjdns = domain_from_ip("fc00::1")
        with self.assertRaisesRegex(MeshnameError, "outside 200::/7"):
            address_of_name(f"{cjdns}.meshname")

    def test_parse_listen(self) -> None:
        self.assertEqual(parse_listen("[::1]:53535"), ("::1", 53535))
        self.assertEqual(parse_listen("127.0.0.1:53"), ("127.0.0.1", 53))
        self.assertEqual(parse_listen("[::]:53"), ("::", 53))
        self.assertEqual(parse_listen(":53"), ("::", 53))
        self.assertEqual(parse_listen("[::1]:0"), ("::1", 0))
        for bad in ("::1:53", "[::1]", "localhost:53", "[127.0.0.1]:53", "[::1]:70000", "x"):
            with self.assertRaisesRegex(ConfigError, "Meshname.Listen"):
                parse_listen(bad)


class CommandTests(ConfigFileMixin, SynchronousTestCase):
    def test_encode_decode(self) -> None:
        for address, label in VECTORS:
            self.assertEqual(run_cli("meshname", "encode", address), (0, label + "\n", ""))
            self.assertEqual(run_cli("meshname", "decode", label), (0, address + "\n", ""))
            self.assertEqual(
                run_cli("meshname", "decode", f"www.{label}.popura."), (0, address + "\n", "")
            )
        code, out, err = run_cli("meshname", "decode", "nope")
        self.assertEqual((code, out), (1, ""))
        self.assertIn("not a base32 label", err)
        self.assertEqual(run_cli("meshname", "encode", "1.2.3.4")[0], 1)

    def test_meshnameconf_for_an_address(self) -> None:
        code, out, err = run_cli("meshnameconf", ADDRESS)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(
            out,
            "Meshname: {\n"
            "  Enable: true\n"
            '  Listen: "[::1]:53535"\n'
            "  Config: {\n"
            f'    "{LABEL}": [\n'
            f'      "{LABEL}.meshname. AAAA {ADDRESS}"\n'
            "    ]\n"
            "  }\n"
            "}\n",
        )
        # Pasted into a config, it is a valid Meshname section whose record parses.
        section = config.parse("{\n" + out + "}\n")[0].section("Meshname", MeshnameConfig)
        self.assertTrue(section.enable)
        zone = parse_zone(section.config)
        self.assertEqual(list(zone.records), [f"{LABEL}.meshname".encode()])
        data = json.loads(run_cli("meshnameconf", ADDRESS, "--json")[1])
        self.assertEqual(
            data,
            {
                "Meshname": {
                    "Enable": True,
                    "Listen": "[::1]:53535",
                    "Config": {LABEL: [f"{LABEL}.meshname. AAAA {ADDRESS}"]},
                }
            },
        )

    def test_meshnameconf_for_a_config(self) -> None:
        key = NodeKey.generate()
        address = addr.format_address(addr.address_for_key(key.public))
        label = domain_from_ip(address)
        other = {REMOTE_LABEL: [f"x.{REMOTE_LABEL}.meshname. A 192.0.2.1"]}
        path = self.write_config(
            {
                "PrivateKey": key.private.hex(),
                "Meshname": {"Listen": "[::1]:5353", "Config": other},
            }
        )
        for argv in (["--useconffile", path], ["-c", path]):
            code, out, _ = run_cli("meshnameconf", *argv)
            self.assertEqual(code, 0)
            section = config.parse("{" + out + "}")[0].section("Meshname", MeshnameConfig)
            self.assertEqual(section.listen, "[::1]:5353")
            self.assertEqual(
                dict(section.config),
                {
                    REMOTE_LABEL: tuple(other[REMOTE_LABEL]),
                    label: (f"{label}.meshname. AAAA {address}",),
                },
            )
        # From standard input, as yggdrasil's -useconf.
        text = json.dumps({"PrivateKey": key.private.hex()})
        code, out, _ = run_cli("meshnameconf", "--useconf", stdin=text.encode())
        self.assertIn(f'"{label}.meshname. AAAA {address}"', out)
        # --full: the whole config normalised, as Popura's -meshnameconf printed it.
        code, out, _ = run_cli("meshnameconf", "--useconffile", path, "--full", "--json")
        data = json.loads(out)
        self.assertEqual(data["PrivateKey"], key.private.hex())
        self.assertTrue(data["Meshname"]["Enable"])
        self.assertIn(label, data["Meshname"]["Config"])

    def test_meshnameconf_errors(self) -> None:
        code, _, err = run_cli("meshnameconf")
        self.assertEqual(code, 1)
        self.assertIn("--useconffile", err)
        self.assertEqual(run_cli("meshnameconf", "not-an-address")[0], 1)
        path = self.write_config({"IfMTU": "big"})
        code, _, err = run_cli("meshnameconf", "--useconffile", path)
        self.assertEqual(code, 1)
        self.assertIn("IfMTU", err)

    def test_section_keeps_records_of_its_own_label(self) -> None:
        mine = {LABEL: ("x. A 1.2.3.4",)}
        section = section_for(ipaddress.IPv6Address(ADDRESS), existing=mine)
        self.assertEqual(section["Config"], {LABEL: ["x. A 1.2.3.4"]})
        self.assertIn('"x. A 1.2.3.4"', format_section(section))


class ZoneTests(SynchronousTestCase):
    def test_record_types(self) -> None:
        cases = {
            f"h.{LABEL}.meshname. AAAA {ADDRESS}": (dns.AAAA, 3600, ADDRESS),
            "h.meshname A 192.0.2.1": (dns.A, 3600, "192.0.2.1"),
            "h.meshname. 60 IN TXT a": (dns.TXT, 60, [b"a"]),
            "h.meshname. IN 1h30m TXT a": (dns.TXT, 5400, [b"a"]),
            r'h.meshname. TXT "a \"b\" c" \065 "\194\169"': (
                dns.TXT,
                3600,
                [b'a "b" c', b"A", b"\xc2\xa9"],
            ),
            "h.meshname. SRV 0 1 443 t.meshname": (dns.SRV, 3600, (0, 1, 443, b"t.meshname")),
            "h.meshname. MX 10 mail.meshname.": (dns.MX, 3600, (10, b"mail.meshname")),
            "h.meshname. NS ns.meshname.": (dns.NS, 3600, b"ns.meshname"),
            "h.meshname. CNAME t.meshname.": (dns.CNAME, 3600, b"t.meshname"),
            "h.meshname. PTR t.meshname.": (dns.PTR, 3600, b"t.meshname"),
            "h.meshname. SOA ns.h.meshname. me.h.meshname. 7 1h 10m 1w 60": (dns.SOA, 3600, 7),
            'h.meshname. CAA 0 issue "ca.example"': (257, 3600, b"\x00\x05issueca.example"),
            # RFC 3597's form: a type dnspython does not know is served as written…
            r"h.meshname. TYPE65280 \# 3 01 0203": (65280, 3600, b"\x01\x02\x03"),
            # …and a known one is read as that type.
            r"h.meshname. TYPE1 \# 4 c0000201": (dns.A, 3600, "192.0.2.1"),
            "h.meshname. SSHFP 4 2 " + "aa" * 16 + " " + "bb" * 16: (
                dns.SSHFP,
                3600,
                b"\xaa" * 16 + b"\xbb" * 16,
            ),
            'h.meshname. URI 10 1 "https://h.meshname/"': (
                256,
                3600,
                b"\x00\n\x00\x01https://h.meshname/",
            ),
            'h.meshname. TXT ( "c d" ) ; a comment': (dns.TXT, 3600, [b"c d"]),
            "h.meshname. HINFO x86 Linux ; a comment": (dns.HINFO, 3600, (b"x86", b"Linux")),
        }
        for line, (rtype, ttl, value) in cases.items():
            rr = parse_record(line)
            self.assertEqual((rr.type, rr.ttl, rr.cls), (rtype, ttl, dns.IN), line)
            self.assertTrue(rr.auth)
            got = value_of(rr)
            self.assertEqual(got, value, line)
        # Owners without the trailing dot are absolute, whatever label's list they are in.
        self.assertEqual(parse_record("h.meshname A 192.0.2.1").name.name, b"h.meshname")
        # Names keep their case; a name in Unicode is served in its IDNA form, as asked for.
        rr = parse_record("Www.h.meshname. CNAME café.h.meshname.")
        self.assertEqual(
            (rr.name.name, rr.payload.name.name), (b"Www.h.meshname", b"xn--caf-dma.h.meshname")
        )

    def test_bad_records(self) -> None:
        cases = {
            "": "empty record",
            "AAAA ::1": "missing the owner",
            "@ AAAA ::1": "'@' is not allowed",
            "h. AAAA 192.0.2.1": "AAAA: not a valid IPv6 address: '192.0.2.1'",
            "h. A ::1": "A: not a valid IPv4 address: '::1'",
            "h. A": "A IPv4 address is missing",
            "h. SRV 1 2 http t.": "SRV port: expected a number 0-65535, got 'http'",
            "h. SRV 1 2 70000 t.": "SRV port: expected a number 0-65535, got '70000'",
            "h. SOA a. b. x 1 1 1 1": "SOA serial: expected a number 0-4294967295, got 'x'",
            "h. MX -1 t.": "MX preference: expected a number 0-65535, got '-1'",
            "h. SRV 1 2 3": "SRV target is missing",
            "h. MX 10": "MX exchange is missing",
            'h. TXT "open': "TXT: unterminated quoted string",
            "h. TXT": "TXT string is missing",
            "h. TXT " + "x" * 256: "TXT string: a string is longer than 255 bytes",
            r'h. TXT "\999"': r"""TXT string: bad escape in '"\999"'""",
            "h. CH TXT a": "only class IN",
            "h. BOGUS x": "unknown record type 'BOGUS'",
            "h. OPT x": "OPT is not a record type that can be served",
            "h. AXFR x": "AXFR is not a record type",
            "h. TYPE252 x": "not a record type",
            "h. ANY x": "ANY is not a record type",
            "h..x. A 192.0.2.1": "owner: a DNS label is empty, got 'h..x.'",
            ("x" * 64) + ". A 192.0.2.1": "owner: a DNS label is > 63 octets long",
            "h. 99999999999 A 192.0.2.1": "TTL 99999999999 is more than 2147483647",
            "h. 5x A 192.0.2.1": "bad TTL '5x': unknown unit 'x'",
            r"h. TYPE65280 \# 4 0102": "TYPE65280 data: 2 bytes, not 4",
            "h. TYPE65280 0102": "TYPE65280: expected RFC 3597 data",
            r"h. TYPE65 \# 3 010203": "TYPE65 data: not valid HTTPS data",
            "h. CNAME a b": "CNAME takes 1 field (target); 'b' is too many",
            'h. CNAME "t."': "CNAME target: a domain name cannot be quoted",
            "h. CNAME @": "CNAME target: '@' is not allowed",
            "h. SSHFP 1 1 xyz": "SSHFP fingerprint: not hexadecimal",
            'h. CAA 0 "is sue" x': "CAA: tag is not alphanumeric",
            "h. ( A 192.0.2.1": "unbalanced parentheses",
            "h. A 192.0.2.1\nx. A 192.0.2.2": "one record per string; more follows: 'x.'",
        }
        for line, reason in cases.items():
            with self.assertRaises(RecordError, msg=line) as caught:
                parse_record(line)
            self.assertIn(reason, str(caught.exception), line)

    def test_one_bad_record_names_itself(self) -> None:
        lines = [RECORDS[0], f"_sip._udp.{LABEL}.meshname. SRV 10 5 sip t.", RECORDS[1]]
        with self.assertRaises(ConfigError) as caught:
            parse_zone({LABEL: lines})
        text = str(caught.exception)
        self.assertTrue(text.startswith(f"Meshname.Config.{LABEL}[1]: "), text)
        self.assertIn("SRV 10 5 sip t.", text)
        self.assertIn("SRV port: expected a number 0-65535, got 'sip'", text)
        with self.assertRaisesRegex(ConfigError, r"Meshname.Config.x\[0\]: expected a record"):
            parse_zone({"x": [5]})

    def test_zone(self) -> None:
        zone = parse_zone({LABEL: RECORDS, "vanity": ["www.vanity.ygg. A 192.0.2.7"]})
        self.assertEqual(zone.labels, {LABEL, "vanity"})
        self.assertEqual(zone.addresses, {ipaddress.IPv6Address(ADDRESS)})
        self.assertIn(f"b.{LABEL}.meshname".encode(), zone.names)  # an empty non-terminal
        self.assertEqual(zone.warnings, [])
        zone = parse_zone({LABEL: [f"www.{REMOTE_LABEL}.meshname. A 192.0.2.1"]})
        self.assertEqual(len(zone.warnings), 1)
        self.assertIn("never be asked for", zone.warnings[0])


class FeatureTests(SynchronousTestCase):
    def test_feature(self) -> None:
        verifyObject(IFeature, meshname_feature)
        self.assertIn("meshname", [f.name for f in features.discover(refresh=True).features])
        self.assertEqual(
            [(o.name, o.key, o.takes_value) for o in meshname_feature.options],
            [("meshname", "Enable", False), ("meshnamelisten", "Listen", True)],
        )
        self.assertIs(meshname_feature.schema, MeshnameConfig)
        cfg, _ = config.parse("{}")
        section = features.feature_config(
            meshname_feature, cfg, {"meshname": True, "meshnamelisten": "[::1]:5300"}
        )
        self.assertEqual((section.enable, section.listen), (True, "[::1]:5300"))

    def test_bad_settings_stop_the_node(self) -> None:
        node = FakeNode()
        bad_listen = MeshnameConfig(enable=True, listen="localhost:53")
        with self.assertRaisesRegex(ConfigError, "Meshname.Listen"):
            meshname_feature.makeService(node, bad_listen)
        bad_record = MeshnameConfig(enable=True, config={LABEL: ("x. AAAA 1.2.3.4",)})
        with self.assertRaisesRegex(ConfigError, rf"Meshname.Config.{LABEL}\[0\]"):
            meshname_feature.makeService(node, bad_record)

    def test_cheap_to_import(self) -> None:
        """The plugin scan and the CLI import these at every start: no DNS code then,
        neither twisted.names nor dnspython (``dns``)."""
        code = (
            "import sys, ygg.popura.meshname, ygg.popura.meshname.commands; "
            "print(sorted(m for m in sys.modules"
            " if m.startswith(('twisted.names', 'dns.')) or m == 'dns'))"
        )
        out = subprocess.run(
            [PYTHON, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout
        self.assertEqual(out.strip(), "[]")


# --------------------------------------------------------------------------- the server


class FakeNode:
    """What MeshnameService uses of INode."""

    def __init__(self, reactor=None, address: str = "201:fbce:ead5:d5fd:257a:bcc1:88be:4218"):
        self.reactor = reactor if reactor is not None else FakeReactor()
        self.address = ipaddress.IPv6Address(address).packed
        self.collectors: list = []

    def register_metrics(self, collector) -> bool:
        self.collectors.append(collector)  # what a scrape would collect
        return True


class FakeUDPPort:
    def __init__(self, reactor: FakeReactor, port: int, protocol, interface: str) -> None:
        self.reactor, self.port, self.protocol, self.interface = reactor, port, protocol, interface
        self.written: list[tuple[bytes, tuple]] = []
        self.listening = True
        self.unreachable = False
        protocol.makeConnection(self)

    def write(self, data: bytes, addr=None) -> None:
        if self.unreachable:
            raise OSError(101, "Network is unreachable")
        self.written.append((data, addr))

    def stopListening(self) -> None:
        self.listening = False
        self.protocol.doStop()

    def getHost(self):
        return type("Host", (), {"port": self.port or 40000})()


class FakeTCPPort:
    def __init__(self, factory) -> None:
        self.factory = factory
        self.listening = True

    def stopListening(self) -> None:
        self.listening = False


class FakeConnector:
    def __init__(self, host: str, port: int, factory, timeout: float) -> None:
        self.host, self.port, self.factory, self.timeout = host, port, factory, timeout
        self.disconnected = False

    def disconnect(self) -> None:
        self.disconnected = True


class FakeReactor(task.Clock):
    def __init__(self) -> None:
        super().__init__()
        self.udp: list[FakeUDPPort] = []
        self.tcp: list[FakeConnector] = []
        self.tcp_servers: list[FakeTCPPort] = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.udp.append(FakeUDPPort(self, port, protocol, interface))
        return self.udp[-1]

    def listenTCP(self, port, factory, backlog=50, interface=""):
        self.tcp_servers.append(FakeTCPPort(factory))
        return self.tcp_servers[-1]

    def connectTCP(self, host, port, factory, timeout=30, bindAddress=None):
        self.tcp.append(FakeConnector(host, port, factory, timeout))
        return self.tcp[-1]


def query_bytes(name: str, rtype: int = dns.AAAA, cls: int = dns.IN, **kwargs) -> bytes:
    message = dns.Message(id=kwargs.pop("id", 4242), recDes=1, **kwargs)
    message.queries = [dns.Query(name, rtype, cls)]
    return message.toStr()


def decode(data: bytes) -> dns.Message:
    message = dns.Message()
    message.fromStr(data)
    return message


CLIENT = ("::1", 5555)
UPSTREAM = ("::1", 5354)


class ServerHarness:
    """A MeshnameService built on a fake reactor, spoken to through its UDP protocol."""

    def __init__(self, records=None, zone=None, **kwargs) -> None:
        self.reactor = FakeReactor()
        self.node = FakeNode(self.reactor)
        cfg = MeshnameConfig(
            enable=True,
            listen=kwargs.pop("listen", "[::1]:53535"),
            config=zone or {LABEL: tuple(RECORDS if records is None else records)},
        )
        kwargs.setdefault("upstream", lambda address: UPSTREAM)
        self.service = MeshnameService(self.node, cfg, **kwargs)
        self.service.startService()
        self.server = self.reactor.udp[0]
        self.proto = self.server.protocol

    def send(self, data: bytes, client=CLIENT) -> None:
        self.proto.datagramReceived(data, client)

    def replies(self) -> list[dns.Message]:
        out = [decode(data) for data, _ in self.server.written]
        self.server.written.clear()
        return out

    def ask(self, name: str, rtype: int = dns.AAAA, **kwargs) -> dns.Message:
        self.send(query_bytes(name, rtype, **kwargs))
        (reply,) = self.replies()
        return reply

    @property
    def upstream(self) -> FakeUDPPort:
        return next(p for p in self.reactor.udp if p is not self.server)


def value_of(rr: dns.RRHeader):
    """The data of a record, as plain values."""
    p = rr.payload
    if rr.type == dns.AAAA:
        return str(ipaddress.IPv6Address(p.address))
    if rr.type == dns.A:
        return p.dottedQuad()
    if rr.type in (dns.SRV,):
        return (p.priority, p.weight, p.port, p.target.name)
    if rr.type == dns.MX:
        return (p.preference, p.name.name)
    if rr.type == dns.SOA:
        return p.serial
    if rr.type == dns.HINFO:
        return (p.cpu, p.os)
    if rr.type == dns.SSHFP:
        return p.fingerprint
    if rr.type in (dns.NS, dns.CNAME, dns.PTR, dns.DNAME):
        return p.name.name
    return p.data  # TXT, SPF, unknown types


def answers(reply: dns.Message) -> list:
    return [value_of(rr) for rr in reply.answers]


class AuthorityTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = ServerHarness()

    def test_configured_records(self) -> None:
        reply = self.h.ask(f"{LABEL}.meshname")
        self.assertEqual((reply.rCode, reply.answer, reply.auth, reply.id), (dns.OK, 1, 1, 4242))
        self.assertEqual(answers(reply), [ADDRESS])
        self.assertEqual(reply.answers[0].ttl, 3600)
        reply = self.h.ask(f"_http._tcp.{LABEL}.meshname", dns.SRV)
        self.assertEqual(answers(reply), [(10, 5, 80, f"www.{LABEL}.meshname".encode())])
        self.assertEqual(  # the SRV target's address comes along
            [rr.name.name for rr in reply.additional], [f"www.{LABEL}.meshname".encode()]
        )
        reply = self.h.ask(f"{LABEL}.meshname", dns.TXT)
        self.assertEqual(answers(reply), [[b"hello world", b"v=1"]])
        reply = self.h.ask(f"www.{LABEL}.meshname")
        self.assertEqual(reply.answers[0].ttl, 300)

    def test_names_match_whatever_their_case(self) -> None:
        asked = f"WwW.{LABEL.upper()}.MeshName"
        reply = self.h.ask(asked)
        self.assertEqual(answers(reply), ["201:1697:567c:1375:3fd1:3a2b:4b85:1"])
        self.assertEqual(reply.answers[0].name.name, asked.encode())  # as asked (0x20)
        self.assertEqual(reply.queries[0].name.name, asked.encode())

    def test_nxdomain_and_nodata(self) -> None:
        reply = self.h.ask(f"nope.{LABEL}.meshname")
        self.assertEqual((reply.rCode, reply.auth, reply.answers), (dns.ENAME, 1, []))
        (soa,) = reply.authority
        self.assertEqual((soa.type, soa.name.name), (dns.SOA, f"{LABEL}.meshname".encode()))
        self.assertEqual(soa.payload.minimum, NEGATIVE_TTL)
        for name, rtype in (
            (f"{LABEL}.meshname", dns.MX),  # exists, no MX
            (f"b.{LABEL}.meshname", dns.A),  # an empty non-terminal
            (f"{LABEL}.ygg", dns.AAAA),  # our apex under another TLD: exists, no records
        ):
            reply = self.h.ask(name, rtype)
            self.assertEqual((reply.rCode, reply.answers, reply.auth), (dns.OK, [], 1), name)
            self.assertEqual([rr.type for rr in reply.authority], [dns.SOA])
        # Records are served under the name they were configured for: not under .ygg.
        self.assertEqual(self.h.ask(f"www.{LABEL}.ygg").rCode, dns.ENAME)

    def test_soa_any_and_cname(self) -> None:
        reply = self.h.ask(f"{LABEL}.meshname", dns.SOA)
        self.assertEqual([rr.type for rr in reply.answers], [dns.SOA])
        reply = self.h.ask(f"{LABEL}.meshname", dns.ALL_RECORDS)
        self.assertEqual(sorted(rr.type for rr in reply.answers), sorted([dns.AAAA, dns.TXT]))
        reply = self.h.ask(f"alias.{LABEL}.meshname")
        self.assertEqual(
            answers(reply),
            [f"www.{LABEL}.meshname".encode(), "201:1697:567c:1375:3fd1:3a2b:4b85:1"],
        )
        reply = self.h.ask(f"alias.{LABEL}.meshname", dns.CNAME)
        self.assertEqual(answers(reply), [f"www.{LABEL}.meshname".encode()])
        reply = self.h.ask(f"loop.{LABEL}.meshname")  # a CNAME to itself ends
        self.assertEqual([rr.type for rr in reply.answers], [dns.CNAME])

    def test_meship(self) -> None:
        reply = self.h.ask(f"{REMOTE_LABEL}.meship")
        self.assertEqual(answers(reply), [REMOTE_ADDRESS])
        self.assertEqual(reply.answers[0].ttl, 3600)
        self.assertEqual(self.h.ask(f"{REMOTE_LABEL}.meship", dns.TXT).answers, [])
        self.assertEqual(self.h.ask(f"x.{REMOTE_LABEL}.meship").rCode, dns.ENAME)
        self.assertEqual(self.h.ask("nope.meship").rCode, dns.ENAME)
        self.assertEqual(self.h.ask("meship").rCode, dns.OK)
        off = ServerHarness(meship=False)
        self.assertEqual(off.ask(f"{REMOTE_LABEL}.meship").rCode, dns.EREFUSED)

    def test_refused_and_other_names(self) -> None:
        for name in ("example.com", "", "com", f"{LABEL}.meshname.example", "localhost"):
            reply = self.h.ask(name)
            self.assertEqual((reply.rCode, reply.answer, reply.answers), (dns.EREFUSED, 1, []))
            self.assertEqual(reply.queries[0].name.name, name.rstrip(".").encode())
        cjdns = domain_from_ip("fc00::1")
        self.assertEqual(self.h.ask(f"{cjdns}.meshname").rCode, dns.EREFUSED)
        self.assertEqual(self.h.ask(f"x.{LABEL}.meshname", cls=dns.CH).rCode, dns.EREFUSED)
        self.assertEqual(self.h.ask(f"{LABEL}.meshname", dns.AXFR).rCode, dns.EREFUSED)
        # Not base32 of an address: no such name can exist.
        self.assertEqual(self.h.ask("www.not-a-label.meshname").rCode, dns.ENAME)
        # The TLDs themselves exist and hold nothing.
        for tld in ("meshname", "ygg", "popura", "vapordns"):
            self.assertEqual((self.h.ask(tld).rCode, self.h.ask(tld).answers), (dns.OK, []))

    def test_a_label_that_is_not_an_address(self) -> None:
        # Popura matches Config keys as strings: a vanity key is served by its spelling.
        h = ServerHarness(zone={"Vanity": ("www.vanity.ygg. A 192.0.2.7",)})
        self.assertEqual(answers(h.ask("www.vanity.ygg", dns.A)), ["192.0.2.7"])
        self.assertEqual(h.ask("nope.vanity.ygg").rCode, dns.ENAME)

    def test_own_address_is_local_when_forwarding_would_loop(self) -> None:
        own = domain_from_ip(bytes(FakeNode().address))
        h = ServerHarness(listen="[::]:53")
        self.assertEqual(h.ask(f"x.{own}.meshname").rCode, dns.ENAME)
        h = ServerHarness(listen="[::1]:53")
        h.send(query_bytes(f"x.{own}.meshname"))
        self.assertEqual(h.replies(), [])  # forwarded instead
        self.assertEqual(len(h.upstream.written), 1)


class RequestTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = ServerHarness()

    def test_malformed_requests(self) -> None:
        good = query_bytes(f"{LABEL}.meshname")
        for data in (
            good[:12],  # no question
            good[:-3],  # question cut short
            good[:4] + b"\x00\x02" + good[6:],  # QDCOUNT 2
            good[:4] + b"\x00\x01\x00\x05" + good[8:],  # ANCOUNT 5
            good + b"\x00" * (MAX_REQUEST + 1),  # oversize
            good[:12] + b"\xc0\x0c" + good[-4:],  # a compression loop
            good[:12] + b"\x3f" + b"x" * 20,
        ):
            self.h.send(data)
            (reply,) = self.h.replies()
            self.assertEqual((reply.id, reply.answer, reply.rCode), (4242, 1, dns.EFORMAT))
        for data in (b"", b"\x00" * 11, decode_flip_qr(good), b"\xff" * 3):
            self.h.send(data)
            self.assertEqual(self.h.replies(), [])
        self.assertEqual(self.h.ask(f"{LABEL}.meshname").rCode, dns.OK)

    def test_opcodes(self) -> None:
        notify = query_bytes(f"{LABEL}.meshname", opCode=dns.OP_NOTIFY)
        self.h.send(notify)
        (reply,) = self.h.replies()
        self.assertEqual((reply.rCode, reply.opCode), (dns.ENOTIMP, dns.OP_NOTIFY))

    def test_edns(self) -> None:
        message = decode(query_bytes(f"{LABEL}.meshname", dns.TXT))
        message.additional = [dns.RRHeader(b"", dns.OPT, 4096, 0, dns.UnknownRecord(b""))]
        self.h.send(message.toStr())
        (reply,) = self.h.replies()
        self.assertEqual([rr.type for rr in reply.additional], [dns.OPT])
        self.assertEqual(reply.additional[0].cls, MAX_UDP_REPLY)
        message.additional = [dns.RRHeader(b"", dns.OPT, 4096, 1 << 16, dns.UnknownRecord(b""))]
        self.h.send(message.toStr())
        (reply,) = self.h.replies()
        self.assertEqual((reply.rCode, reply.additional[0].ttl >> 24), (0, 1))  # BADVERS
        message.additional = [message.additional[0]] * 2
        self.h.send(message.toStr())
        self.assertEqual(self.h.replies()[0].rCode, dns.EFORMAT)

    def test_large_answers_are_truncated_over_udp_not_tcp(self) -> None:
        records = [f'{LABEL}.meshname. TXT "{i:03d}{"x" * 200}"' for i in range(10)]
        h = ServerHarness(records=records)
        reply = h.ask(f"{LABEL}.meshname", dns.TXT)
        self.assertEqual((reply.trunc, reply.answers, reply.rCode), (1, [], dns.OK))
        self.assertEqual(len(reply.queries), 1)
        # An EDNS client with room gets more, up to 1232 bytes: still too little here.
        message = decode(query_bytes(f"{LABEL}.meshname", dns.TXT))
        message.additional = [dns.RRHeader(b"", dns.OPT, 65000, 0, dns.UnknownRecord(b""))]
        h.send(message.toStr())
        data, _ = h.server.written.pop()
        self.assertLessEqual(len(data), MAX_UDP_REPLY)
        self.assertEqual(decode(data).trunc, 1)
        # Over TCP the whole answer.
        stream = StreamServerFactory(h.service.factory).buildProtocol(None)
        transport = StringTransport()
        stream.makeConnection(transport)
        request = query_bytes(f"{LABEL}.meshname", dns.TXT)
        stream.dataReceived(struct.pack("!H", len(request)) + request)
        data = transport.value()
        (length,) = struct.unpack("!H", data[:2])
        reply = decode(data[2 : 2 + length])
        self.assertEqual((reply.trunc, len(reply.answers)), (0, 10))
        stream.connectionLost(None)

    def test_tcp_limits(self) -> None:
        factory = StreamServerFactory(self.h.service.factory)
        protocols = [factory.buildProtocol(None) for _ in range(MAX_TCP_CONNECTIONS)]
        self.assertIsNone(factory.buildProtocol(None))
        protocols[0].makeConnection(StringTransport())
        protocols[0].connectionLost(None)
        self.assertIsNotNone(factory.buildProtocol(None))
        # An idle connection is closed.
        stream = StreamServerFactory(self.h.service.factory).buildProtocol(None)
        stream.callLater = self.h.reactor.callLater
        transport = StringTransport()
        stream.makeConnection(transport)
        garbage = b"\x00" * 40
        stream.dataReceived(struct.pack("!H", len(garbage)) + garbage)
        self.assertEqual(decode(transport.value()[2:]).rCode, dns.EFORMAT)
        self.h.reactor.advance(TCP_IDLE_TIMEOUT + 1)
        self.assertTrue(transport.disconnecting)


def decode_flip_qr(data: bytes) -> bytes:
    """The same message marked as a response."""
    return data[:2] + bytes([data[2] | 0x80]) + data[3:]


class ForwarderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = ServerHarness()

    def upstream_reply(self, rcode: int = dns.OK, records=(), trunc: int = 0, index: int = -1):
        data, server = self.h.upstream.written[index]
        request = decode(data)
        reply = dns.Message(id=request.id, answer=1, rCode=rcode, trunc=trunc, auth=1)
        reply.queries = request.queries
        for rr in records:
            reply.answers.append(rr)
        return reply, server

    def test_forwarded_answer(self) -> None:
        name = f"www.{REMOTE_LABEL}.meshname"
        self.h.send(query_bytes(name))
        self.assertEqual(self.h.replies(), [])
        data, server = self.h.upstream.written[0]
        self.assertEqual(server, UPSTREAM)
        request = decode(data)
        self.assertEqual((request.recDes, request.answer), (1, 0))
        self.assertEqual(
            [(q.name.name, q.type) for q in request.queries], [(name.encode(), dns.AAAA)]
        )
        self.assertEqual(request.additional, [])  # no EDNS
        rr = dns.RRHeader(name, dns.AAAA, dns.IN, 60, dns.Record_AAAA("200::1"), auth=True)
        reply, server = self.upstream_reply(records=[rr])
        self.h.upstream.protocol.datagramReceived(reply.toStr(), ("::1", 5354, 0, 0))
        (answer,) = self.h.replies()
        self.assertEqual((answer.rCode, answer.auth, answers(answer)), (dns.OK, 0, ["200::1"]))
        self.assertEqual(self.h.service.stats["forwarded"], 1)

    def test_upstream_nxdomain_is_relayed_other_errors_are_servfail(self) -> None:
        for rcode, expected in (
            (dns.ENAME, dns.ENAME),
            (dns.EREFUSED, dns.ESERVER),
            (dns.ESERVER, dns.ESERVER),
            (dns.EFORMAT, dns.ESERVER),
        ):
            self.h.send(query_bytes(f"r{rcode}.{REMOTE_LABEL}.meshname"))
            reply, server = self.upstream_reply(rcode)
            self.h.upstream.protocol.datagramReceived(reply.toStr(), server)
            (answer,) = self.h.replies()
            self.assertEqual(answer.rCode, expected)

    def test_timeout_is_servfail(self) -> None:
        self.h.send(query_bytes(f"www.{REMOTE_LABEL}.meshname"))
        self.h.reactor.advance(UPSTREAM_TIMEOUT - 0.1)
        self.assertEqual(self.h.replies(), [])
        self.h.reactor.advance(0.2)
        (answer,) = self.h.replies()
        self.assertEqual(answer.rCode, dns.ESERVER)
        # A late reply changes nothing.
        reply, server = self.upstream_reply()
        self.h.upstream.protocol.datagramReceived(reply.toStr(), server)
        self.assertEqual(self.h.replies(), [])
        self.assertEqual(self.h.reactor.getDelayedCalls(), [])

    def test_unreachable_is_servfail_at_once(self) -> None:
        self.h.send(query_bytes(f"www.{REMOTE_LABEL}.meshname"))  # opens the socket
        self.h.reactor.advance(10)
        self.h.replies()
        self.h.upstream.unreachable = True
        self.h.send(query_bytes(f"www.{REMOTE_LABEL}.meshname"))
        (answer,) = [r for r in self.h.replies()]
        self.assertEqual(answer.rCode, dns.ESERVER)

    def test_replies_must_match(self) -> None:
        self.h.send(query_bytes(f"www.{REMOTE_LABEL}.meshname"))
        reply, server = self.upstream_reply()
        proto = self.h.upstream.protocol
        proto.datagramReceived(reply.toStr(), ("::2", 5354))  # from elsewhere
        other = dns.Message(id=reply.id, answer=1)
        other.queries = [dns.Query(b"other.meshname", dns.AAAA)]
        proto.datagramReceived(other.toStr(), server)  # another question
        wrong_id = dns.Message(id=(reply.id + 1) % 65536, answer=1)
        wrong_id.queries = reply.queries
        proto.datagramReceived(wrong_id.toStr(), server)
        proto.datagramReceived(b"\x00", server)
        proto.datagramReceived(reply.toStr()[:20], server)
        self.assertEqual(self.h.replies(), [])
        proto.datagramReceived(reply.toStr(), server)
        self.assertEqual(len(self.h.replies()), 1)

    def test_identical_questions_share_one_lookup(self) -> None:
        name = f"www.{REMOTE_LABEL}.meshname"
        self.h.send(query_bytes(name, id=1))
        self.h.send(query_bytes(name.upper(), id=2))
        self.assertEqual(len(self.h.upstream.written), 1)
        reply, server = self.upstream_reply(
            records=[dns.RRHeader(name, dns.AAAA, dns.IN, 60, dns.Record_AAAA("200::1"))]
        )
        self.h.upstream.protocol.datagramReceived(reply.toStr(), server)
        replies = self.h.replies()
        self.assertEqual(sorted(r.id for r in replies), [1, 2])
        self.assertEqual([answers(r) for r in replies], [["200::1"], ["200::1"]])

    def test_lookups_in_flight_are_capped(self) -> None:
        h = ServerHarness(max_pending=3)
        for i in range(5):
            h.send(query_bytes(f"n{i}.{REMOTE_LABEL}.meshname", id=i))
        self.assertEqual(len(h.upstream.written), 3)
        self.assertEqual(
            [(r.id, r.rCode) for r in h.replies()], [(3, dns.ESERVER), (4, dns.ESERVER)]
        )
        # Local answers do not wait for the remote ones.
        self.assertEqual(h.ask(f"{LABEL}.meshname").rCode, dns.OK)

    def test_truncated_reply_is_asked_again_over_tcp(self) -> None:
        name = f"www.{REMOTE_LABEL}.meshname"
        self.h.send(query_bytes(name, dns.TXT))
        reply, server = self.upstream_reply(trunc=1)
        self.h.upstream.protocol.datagramReceived(reply.toStr(), server)
        (connector,) = self.h.reactor.tcp
        self.assertEqual((connector.host, connector.port), UPSTREAM)
        self.assertLessEqual(connector.timeout, UPSTREAM_TIMEOUT)
        stream = connector.factory.buildProtocol(None)
        transport = StringTransport()
        stream.makeConnection(transport)
        sent = transport.value()
        self.assertEqual(decode(sent[2:]).queries[0].name.name, name.encode())
        txt = dns.RRHeader(
            name, dns.TXT, dns.IN, 60, dns.Record_TXT(b"x" * 250, b"y" * 250, b"z" * 200)
        )
        full = dns.Message(id=decode(sent[2:]).id, answer=1, maxSize=0)
        full.queries, full.answers = decode(sent[2:]).queries, [txt]
        data = full.toStr()
        stream.dataReceived(struct.pack("!H", len(data)) + data)
        (answer,) = self.h.replies()  # too big for plain UDP: TC, so the client uses TCP
        self.assertEqual((answer.rCode, answer.trunc), (dns.OK, 1))
        self.assertTrue(connector.disconnected)

    def test_stop_fails_lookups_and_closes_sockets(self) -> None:
        self.h.send(query_bytes(f"www.{REMOTE_LABEL}.meshname"))
        upstream = self.h.upstream
        self.successResultOf(self.h.service.stopService())
        self.assertFalse(upstream.listening)
        self.assertFalse(self.h.server.listening)
        self.assertEqual(self.h.reactor.getDelayedCalls(), [])

    def test_default_upstream_is_port_53_of_the_address(self) -> None:
        self.assertEqual(
            default_upstream(ipaddress.IPv6Address(REMOTE_ADDRESS)), (REMOTE_ADDRESS, 53)
        )

    def test_metrics(self) -> None:
        """Queries, answers by RCODE, forwards, their failures and latency (docs/metrics.md),
        as the node's /metrics page would show them."""
        self.assertEqual(self.h.ask(f"{LABEL}.meshname").rCode, dns.OK)
        self.h.send(query_bytes(f"www.{REMOTE_LABEL}.meshname"))
        self.h.reactor.advance(0.03)
        reply, server = self.upstream_reply()
        self.h.upstream.protocol.datagramReceived(reply.toStr(), server)
        self.h.send(query_bytes(f"gone.{REMOTE_LABEL}.meshname"))
        self.h.reactor.advance(UPSTREAM_TIMEOUT + 0.1)
        self.h.send(b"\xff" * 3)  # unreadable: dropped
        self.assertEqual(len(self.h.replies()), 2)
        found = scrape.samples(scrape.page(*self.h.node.collectors))
        self.assertEqual(
            scrape.value(found, "ygg_meshname_queries_total"), 3
        )  # the unreadable one is not
        self.assertEqual(scrape.value(found, "ygg_meshname_answers_total", rcode="NOERROR"), 2)
        self.assertEqual(scrape.value(found, "ygg_meshname_answers_total", rcode="SERVFAIL"), 1)
        self.assertEqual(scrape.value(found, "ygg_meshname_forwards_total"), 2)
        self.assertEqual(
            scrape.value(found, "ygg_meshname_forward_failures_total", reason="timeout"), 1
        )
        self.assertEqual(
            scrape.value(found, "ygg_meshname_forward_failures_total", reason="busy"), 0
        )
        self.assertEqual(
            scrape.value(found, "ygg_meshname_request_errors_total", reason="unreadable"), 1
        )
        histogram = "ygg_meshname_forward_duration_seconds"
        self.assertEqual(scrape.value(found, f"{histogram}_count"), 1)
        self.assertAlmostEqual(scrape.value(found, f"{histogram}_sum"), 0.03)
        self.assertEqual(scrape.value(found, f"{histogram}_bucket", le="0.025"), 0)
        self.assertEqual(scrape.value(found, f"{histogram}_bucket", le="0.05"), 1)
        self.assertEqual(scrape.value(found, f"{histogram}_bucket", le="+Inf"), 1)


class ClassifyTests(SynchronousTestCase):
    def test_kinds(self) -> None:
        zone = parse_zone({LABEL: RECORDS})
        own = ipaddress.IPv6Address("201:fbce:ead5:d5fd:257a:bcc1:88be:4218")
        cases = {
            b"": targets.REFUSED,
            b"example.com": targets.REFUSED,
            b"\xff.meshname": targets.NXDOMAIN,
            b"x.\xff": targets.REFUSED,
            b"meshname": targets.TLD,
            f"x.{LABEL}.meshname".encode(): targets.OWN,
            f"x.{REMOTE_LABEL}.ygg".encode(): targets.REMOTE,
            f"x.{REMOTE_LABEL}.popura".encode(): targets.REMOTE,
            f"x.{REMOTE_LABEL}.vapordns".encode(): targets.REMOTE,
            f"{domain_from_ip(own)}.meshname".encode(): targets.OWN,
            f"{REMOTE_LABEL}.meship".encode(): targets.MESHIP_NAME,
        }
        for name, kind in cases.items():
            self.assertEqual(targets.classify(name, zone, frozenset({own})).kind, kind, name)
        target = targets.classify(f"x.{REMOTE_LABEL}.MESHNAME.".encode(), zone)
        remote = ipaddress.IPv6Address(REMOTE_ADDRESS)
        self.assertEqual(target, targets.Target(targets.REMOTE, remote))


class LoggingTests(SynchronousTestCase):
    def test_nothing_logged_per_packet(self) -> None:
        from twisted.logger import globalLogPublisher

        events: list = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        h = ServerHarness()
        events.clear()
        for i in range(200):
            h.send(b"\x00\x01" + bytes([i]) * 30)
            h.send(query_bytes(f"x{i}.{REMOTE_LABEL}.meshname"))
            h.send(query_bytes("example.com"))
        h.reactor.advance(10)
        self.assertEqual([e.get("log_format") for e in events], [])


class GoSpellingTests(ConfigFileMixin, SynchronousTestCase):
    """``ygg -useconffile F -meshnameconf``: cli.go_main hands its whole argv over."""

    def test_command_takes_yggdrasil_flags(self) -> None:
        from ygg.popura.meshname.commands import cmd_meshnameconf

        key = NodeKey.generate()
        address = addr.format_address(addr.address_for_key(key.public))
        path = self.write_config({"PrivateKey": key.private.hex(), "IfMTU": 1500})
        for argv in (
            ["-useconffile", path, "-meshnameconf", "-json"],
            ["-meshnameconf", "-useconffile=" + path, "-json", "-loglevel=debug"],
        ):
            code, out, _ = run_cli_function(cmd_meshnameconf, argv)
            self.assertEqual(code, 0)
            data = json.loads(out)  # the whole config, as Popura printed it
            self.assertEqual((data["IfMTU"], data["Meshname"]["Enable"]), (1500, True))
            self.assertIn(f" AAAA {address}", json.dumps(data["Meshname"]["Config"]))
        code, out, _ = run_cli_function(cmd_meshnameconf, ["-meshnameconf", ADDRESS])
        self.assertEqual((code, out.splitlines()[0]), (0, "Meshname: {"))  # 0.3's form

    def test_through_the_flag_parser(self) -> None:
        """The feature declares the command with ``go_flag``: ygg's flag parser knows it."""
        path = self.write_config({"PrivateKey": NodeKey.generate().private.hex()})
        code, out, _ = run_cli("-useconffile", path, "-meshnameconf", "-json")
        self.assertEqual(code, 0)
        self.assertTrue(json.loads(out)["Meshname"]["Enable"])


def run_cli_function(fn, argv: list[str]) -> tuple[int, str, str]:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = fn(argv)
    return code, out.getvalue(), err.getvalue()
