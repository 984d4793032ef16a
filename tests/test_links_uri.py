"""Peer and listener URIs as yggdrasil 0.4.7 reads them (spec §2.1, §2.2, §2.7, §2.9)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ygg.errors import YggError
from ygg.links import netutil
from ygg.links.uri import (
    LinkURIError,
    URLParseError,
    parse_go_duration,
    parse_listen_uri,
    parse_peer_uri,
)

# (obs) What the Debian yggdrasil 0.4.7-1+b5 binary's admin ``addPeer`` answered for each
# URI (None = success).  Collected 2026-11-22 over its JSON admin socket.
ADD_PEER_OBSERVED = [
    ("tcp://[fe80::1%eth0]:1234", 'parse "tcp://[fe80::1%eth0]:1234": invalid URL escape "%et"'),
    (
        "tcp://h:1?priority=300",
        'priority invalid: strconv.ParseUint: parsing "300": value out of range',
    ),
    (
        "tcp://h:1?priority=30x",
        'priority invalid: strconv.ParseUint: parsing "30x": invalid syntax',
    ),
    ("tcp://h:1?priority=-1", 'priority invalid: strconv.ParseUint: parsing "-1": invalid syntax'),
    ("tcp://h:1?priority=+1", 'priority invalid: strconv.ParseUint: parsing " 1": invalid syntax'),
    (
        "tcp://h:1?priority=2560x",
        'priority invalid: strconv.ParseUint: parsing "2560x": value out of range',
    ),
    ("tcp://h:1?key=zz", "pinned key contains invalid hex characters"),
    ("tcp://h:1?key=abc", "pinned key contains invalid hex characters"),
    # ("quic://h:1", "unknown call scheme: quic"): the link layer's answer on a node
    # without v0.5 (test_links_manager); the URI itself is 0.5.12's.
    ("1.2.3.4:5", 'parse "1.2.3.4:5": first path segment in URL cannot contain colon'),
    ("host:1234", "unknown call scheme: host"),
    ("tcp://h:abc", 'parse "tcp://h:abc": invalid port ":abc" after host'),
    ("tcp://[::1", "parse \"tcp://[::1\": missing ']' in host"),
    ("tcp://a b:1", 'parse "tcp://a b:1": invalid character " " in host name'),
    ("tcp://\x01", 'parse "tcp://\\x01": net/url: invalid control character in URL'),
    ("tcp://u@@x:1", None),
    ("tcp://u^x@h:1", 'parse "tcp://u^x@h:1": net/url: invalid userinfo'),
    ("tcp://h:1#%zz", 'parse "tcp://h:1#%zz": invalid URL escape "%zz"'),
    ("tcp://[fe80::1%25eth%00]:1", 'parse "tcp://[fe80::1%25eth%00]:1": invalid URL escape "%00"'),
    ("tcp://h%41:1", 'parse "tcp://h%41:1": invalid URL escape "%41"'),
    ("tcp://[::1]x:1", 'parse "tcp://[::1]x:1": invalid port "x:1" after host'),
    (":foo", 'parse ":foo": missing protocol scheme'),
    ("", "unknown call scheme: "),
    ("tcpx://h:1?key=zz", "pinned key contains invalid hex characters"),
    ("TCPX://h:1", "unknown call scheme: tcpx"),
    ("/path", "unknown call scheme: "),
    ("tcp://h:1?priority=300;x=1", None),
    ("tcp://h:1?key=00;k=1", None),
    # Problems Go meets only when dialing: addPeer succeeds (see test_links_endpoints).
    ("tcp://127.0.0.1", None),
    ("tcp://127.0.0.1:99999", None),
    ("tcp://a:b:c:1", None),
    ("socks://127.0.0.1:1/nohost", None),
]

KEY_A = "04859ec15a8af8cbd41c11e7f71cd73e2a4e25fa9f2cd29fa08dea50c651acb9"
KEY_B = "5cf14a93ec0830a1dc344f582afbb7c1f5f1210b65c9239c476b99cdc3c3e781"


class GoErrorTextTests(SynchronousTestCase):
    def test_add_peer_answers_match_the_go_node(self) -> None:
        for uri, expected in ADD_PEER_OBSERVED:
            with self.subTest(uri=uri):
                if expected is None:
                    parse_peer_uri(uri)
                    continue
                with self.assertRaises(LinkURIError) as caught:
                    parse_peer_uri(uri)
                self.assertEqual(str(caught.exception), expected)

    def test_url_syntax_errors_have_their_own_type(self) -> None:
        self.assertRaises(URLParseError, parse_peer_uri, "tcp://[::1")
        self.assertRaises(URLParseError, parse_listen_uri, "tcp://[::1")
        try:
            parse_peer_uri("quic://h:1")
        except URLParseError:  # pragma: no cover
            self.fail("a scheme error is not a URL syntax error")
        except LinkURIError:
            pass

    def test_key_checked_before_priority_before_scheme(self) -> None:
        with self.assertRaises(LinkURIError) as caught:
            parse_peer_uri("bogus://h:1?priority=999&key=zz")
        self.assertEqual(str(caught.exception), "pinned key contains invalid hex characters")
        with self.assertRaises(LinkURIError) as caught:
            parse_peer_uri("bogus://h:1?priority=999")
        self.assertIn("priority invalid", str(caught.exception))

    def test_errors_are_ygg_errors(self) -> None:
        self.assertTrue(issubclass(LinkURIError, YggError))


class RefusedBeforeDialingTests(SynchronousTestCase):
    """URIs that Go accepts but can never dial: refused at once, with the reason, for
    addPeer, Peers, InterfacePeers and Listen alike (one parser)."""

    def refused(self, text: str) -> str:
        with self.assertRaises(LinkURIError) as caught:
            parse_peer_uri(text)
        with self.assertRaises(LinkURIError) as listen_caught:
            parse_listen_uri(text.replace("socks://", "tcp://"))
        if not text.startswith("socks://"):
            self.assertEqual(str(listen_caught.exception), str(caught.exception))
        return str(caught.exception)

    def test_unix_path_longer_than_a_socket_address(self) -> None:
        path = "/tmp/" + "p" * 102  # 107 bytes: the most sun_path holds
        self.assertEqual(parse_peer_uri(f"unix://{path}").path, path)
        self.assertEqual(
            self.refused(f"unix://{path}x"), "unix socket path too long: 108 bytes, at most 107"
        )
        # Bytes, not characters: 54 two-byte characters are 108 bytes.
        self.assertEqual(
            self.refused("unix:///" + "é" * 54),
            "unix socket path too long: 109 bytes, at most 107",
        )

    def test_host_names_the_resolver_cannot_encode(self) -> None:
        self.assertEqual(
            self.refused("tcp://\u202eevil:1"),
            "host \"\\u202eevil\" is not a valid domain name: invalid character '\\u202e'",
        )
        text = self.refused(f"tls://{'a' * 64}.example:1")
        self.assertTrue(
            text.startswith(f'host "{"a" * 64}.example" is not a valid domain name: label'), text
        )
        self.assertTrue(text.endswith("too long"), text)
        self.assertIn("is not a valid domain name", self.refused(f"tcp://{'é' * 70}:1"))
        self.assertIn("is not a valid domain name", self.refused(f"socks://{'a' * 64}:1/t:2"))

    def test_good_names_and_literals_pass(self) -> None:
        for text in (
            "tcp://bücher.example:1",
            f"tcp://{'a' * 63}.example:1",
            "tcp://peer.example.:1",
            "tls://[fe80::1%25eth0]:1",
            "tcp://:1",
            f"socks://127.0.0.1:1/{'a' * 64}:2",  # the proxy resolves the target
            "tcp://\u202eevil",  # no port: the dial says so, as in Go
        ):
            with self.subTest(text=text):
                parse_peer_uri(text)


class PeerURITests(SynchronousTestCase):
    def test_plain_tcp(self) -> None:
        uri = parse_peer_uri("tcp://203.0.113.7:9001")
        self.assertEqual(
            (uri.scheme, uri.host, uri.port, uri.zone, uri.path),
            ("tcp", "203.0.113.7", 9001, "", ""),
        )
        self.assertEqual(uri.priority, 0)
        self.assertEqual(uri.pinned_keys, frozenset())
        self.assertEqual(uri.host_port, "203.0.113.7:9001")
        self.assertEqual(uri.text, "tcp://203.0.113.7:9001")

    def test_ipv6_zone(self) -> None:
        uri = parse_peer_uri("tls://[fe80::94c5:7fff:fe14:363e%25eth0]:40000?priority=3")
        self.assertEqual(uri.host, "fe80::94c5:7fff:fe14:363e")
        self.assertEqual(uri.zone, "eth0")
        self.assertEqual(uri.port, 40000)
        self.assertEqual(uri.priority, 3)
        self.assertEqual(uri.host_port, "[fe80::94c5:7fff:fe14:363e%eth0]:40000")
        self.assertEqual(uri.link_name(), "tls://[fe80::94c5:7fff:fe14:363e%25eth0]:40000")

    def test_escaped_zone_characters(self) -> None:
        uri = parse_peer_uri("tcp://[fe80::1%25en%2D0]:1")
        self.assertEqual(uri.zone, "en-0")

    def test_ipv6_without_zone(self) -> None:
        uri = parse_peer_uri("tcp://[2001:db8::1]:443")
        self.assertEqual((uri.host, uri.port, uri.zone), ("2001:db8::1", 443, ""))

    def test_hostname_and_missing_or_bad_port(self) -> None:
        self.assertEqual(parse_peer_uri("tcp://example.net:1").host, "example.net")
        # Go parses these and fails only when dialing; the port reads as 0 meanwhile.
        for text in ("tcp://example.net", "tcp://example.net:", "tcp://example.net:99999"):
            with self.subTest(text=text):
                uri = parse_peer_uri(text)
                self.assertEqual((uri.host, uri.port), ("example.net", 0))

    def test_repeated_keys_padded_and_truncated(self) -> None:
        uri = parse_peer_uri(f"tls://h:1?key={KEY_A}&key={KEY_B}&key=00ff&key={KEY_A}abcd")
        self.assertEqual(
            uri.pinned_keys,
            frozenset(
                {
                    bytes.fromhex(KEY_A),
                    bytes.fromhex(KEY_B),
                    bytes.fromhex("00ff") + bytes(30),
                }
            ),
        )

    def test_empty_key_pins_the_zero_key(self) -> None:
        self.assertEqual(parse_peer_uri("tcp://h:1?key=").pinned_keys, frozenset({bytes(32)}))

    def test_uppercase_hex_key(self) -> None:
        uri = parse_peer_uri(f"tcp://h:1?key={KEY_A.upper()}")
        self.assertEqual(uri.pinned_keys, frozenset({bytes.fromhex(KEY_A)}))

    def test_priority(self) -> None:
        self.assertEqual(parse_peer_uri("tcp://h:1?priority=255").priority, 255)
        self.assertEqual(parse_peer_uri("tcp://h:1?priority=007").priority, 7)
        self.assertEqual(parse_peer_uri("tcp://h:1?priority=").priority, 0)
        self.assertEqual(parse_peer_uri("tcp://h:1?priority=%33").priority, 3)
        self.assertEqual(parse_peer_uri("tcp://h:1?priority=4&priority=900").priority, 4)

    def test_malformed_query_pairs_are_dropped(self) -> None:
        uri = parse_peer_uri("tcp://h:1?priority=%zz&key=%gg")
        self.assertEqual((uri.priority, uri.pinned_keys), (0, frozenset()))

    def test_scheme_case(self) -> None:
        uri = parse_peer_uri("TCP://Host.Example:1//")
        self.assertEqual(uri.scheme, "tcp")
        self.assertEqual(uri.host, "Host.Example")
        self.assertEqual(uri.link_name(), "tcp://Host.Example:1")

    def test_unix(self) -> None:
        uri = parse_peer_uri("unix:///run/ygg/peer.sock?priority=2")
        self.assertEqual((uri.scheme, uri.path, uri.priority), ("unix", "/run/ygg/peer.sock", 2))
        self.assertEqual((uri.host, uri.port), ("", 0))
        self.assertEqual(uri.link_name(), "unix:///run/ygg/peer.sock?priority=2")

    def test_unix_escaped_path(self) -> None:
        self.assertEqual(parse_peer_uri("unix:///tmp/a%20b.sock").path, "/tmp/a b.sock")

    def test_socks_forms(self) -> None:
        uri = parse_peer_uri("socks://user:p%40ss@proxy.example:1080/target.example:9001/extra")
        self.assertEqual((uri.host, uri.port), ("proxy.example", 1080))
        self.assertEqual(uri.path, "target.example:9001")
        self.assertEqual((uri.username, uri.password), ("user", "p@ss"))
        self.assertEqual(
            uri.link_name(), "socks://user:p%40ss@proxy.example:1080/target.example:9001/extra"
        )

        uri = parse_peer_uri("socks://127.0.0.1:1080//[2001:db8::5]:9001/")
        self.assertEqual(uri.path, "[2001:db8::5]:9001")
        self.assertEqual((uri.username, uri.password), (None, None))

        uri = parse_peer_uri("socks://justuser@[::1]:1080/1.2.3.4:5?key=00")
        self.assertEqual((uri.host, uri.port), ("::1", 1080))
        self.assertEqual((uri.username, uri.password), ("justuser", None))
        self.assertEqual(uri.link_name(), "socks://justuser@[::1]:1080/1.2.3.4:5?key=00")

        uri = parse_peer_uri("socks://:@proxy:1/t:2")
        self.assertEqual((uri.username, uri.password), ("", ""))

        self.assertEqual(parse_peer_uri("socks://proxy:1").path, "")

    def test_link_name_of_tcp_and_tls(self) -> None:
        cases = {
            "tcp://1.2.3.4:5?key=00&priority=1": "tcp://1.2.3.4:5",
            "tls://host.example:5/": "tls://host.example:5",
            "tls://host.example:5///?x": "tls://host.example:5",
            "tcp://h:1/#frag": "tcp://h:1/#frag",
            "tcp://[2001:db8::1]:7": "tcp://[2001:db8::1]:7",
        }
        for text, name in cases.items():
            with self.subTest(text=text):
                self.assertEqual(parse_peer_uri(text).link_name(), name)

    def test_server_name(self) -> None:
        cases = {
            "tls://peer.example:443": "peer.example",
            "tls://peer.example.:443": "peer.example",
            "tls://1.2.3.4:443": None,
            "tls://[2001:db8::1]:443": None,
            "tls://[fe80::1%25eth0]:443": None,
            "tls://1.2.3.4:443?sni=front.example": "front.example",
            "tls://peer.example:443?sni=5.6.7.8": "peer.example",
            "tls://1.2.3.4:443?sni=5.6.7.8": None,
            "tls://peer.example?sni=": None,  # no port: Go's SplitHostPort fails
            "tls://:443": None,
        }
        for text, name in cases.items():
            with self.subTest(text=text):
                self.assertEqual(parse_peer_uri(text).server_name(), name)


class ListenURITests(SynchronousTestCase):
    def test_schemes(self) -> None:
        self.assertEqual(parse_listen_uri("tcp://0.0.0.0:0").scheme, "tcp")
        self.assertEqual(parse_listen_uri("tls://[::]:443").host, "::")
        self.assertEqual(parse_listen_uri("unix:///run/y.sock").path, "/run/y.sock")
        # quic is 0.5.12's: refused by the link layer of a node without v0.5 (as 0.4.7 does).
        self.assertEqual(parse_listen_uri("quic://x:1").scheme, "quic")
        for text, scheme in (("socks://a:1/b:2", "socks"), ("x", "")):
            with self.subTest(text=text):
                with self.assertRaises(LinkURIError) as caught:
                    parse_listen_uri(text)
                self.assertEqual(str(caught.exception), f'unrecognised scheme "{scheme}"')

    def test_priority_bad_value_ignored(self) -> None:
        self.assertEqual(parse_listen_uri("tcp://[::]:0?priority=9").priority, 9)
        self.assertEqual(parse_listen_uri("tcp://[::]:0?priority=300").priority, 0)
        self.assertEqual(parse_listen_uri("tcp://[::]:0?priority=x").priority, 0)

    def test_keys_ignored(self) -> None:
        self.assertEqual(parse_listen_uri("tcp://[::]:0?key=zz").pinned_keys, frozenset())

    def test_empty_host(self) -> None:
        uri = parse_listen_uri("tcp://:9001")
        self.assertEqual((uri.host, uri.port, uri.host_port), ("", 9001, ":9001"))


class NetUtilTests(SynchronousTestCase):
    def test_split_host_port(self) -> None:
        self.assertEqual(netutil.split_host_port("1.2.3.4:5"), ("1.2.3.4", "5"))
        self.assertEqual(netutil.split_host_port("[fe80::1%eth0]:5"), ("fe80::1%eth0", "5"))
        self.assertEqual(netutil.split_host_port(":5"), ("", "5"))
        self.assertEqual(netutil.split_host_port("h:"), ("h", ""))
        errors = {
            "127.0.0.1": "address 127.0.0.1: missing port in address",
            "a:b:c:1": "address a:b:c:1: too many colons in address",
            "[::1]": "address [::1]: missing port in address",
            "[::1:5": "address [::1:5: missing ']' in address",
            "[::1]x:5": "address [::1]x:5: missing port in address",
            "[::1]:5]": "address [::1]:5]: unexpected ']' in address",
            "": "missing port in address",
        }
        for text, message in errors.items():
            with self.subTest(text=text):
                with self.assertRaises(netutil.AddressError) as caught:
                    netutil.split_host_port(text)
                self.assertEqual(str(caught.exception), message)

    def test_parse_port(self) -> None:
        self.assertEqual(netutil.parse_port(""), 0)
        self.assertEqual(netutil.parse_port("65535"), 65535)
        with self.assertRaises(netutil.AddressError) as caught:
            netutil.parse_port("99999")
        self.assertEqual(str(caught.exception), "address 99999: invalid port")

    def test_join_and_addr_strings(self) -> None:
        self.assertEqual(netutil.join_host_port("::1", 5), "[::1]:5")
        self.assertEqual(netutil.join_host_port("h", 5), "h:5")
        self.assertEqual(netutil.tcp_addr_string("fe80::1", 5, "eth0"), "[fe80::1%eth0]:5")
        self.assertEqual(netutil.tcp_addr_string("::ffff:10.0.0.1", 5), "10.0.0.1:5")
        self.assertEqual(netutil.tcp_addr_string("", 5), ":5")

    def test_parse_ip_is_go_parse_ip(self) -> None:
        self.assertIsNotNone(netutil.parse_ip("1.2.3.4"))
        self.assertIsNotNone(netutil.parse_ip("::ffff:1.2.3.4"))
        for text in ("fe80::1%eth0", "[::1]", "01.2.3.4", "1.2.3", "", "host"):
            with self.subTest(text=text):
                self.assertIsNone(netutil.parse_ip(text))

    def test_link_local(self) -> None:
        for text in ("fe80::1", "fe80::1%eth0", "febf::1", "169.254.3.4", "::ffff:169.254.0.1"):
            with self.subTest(text=text):
                self.assertTrue(netutil.is_link_local_unicast(text))
        for text in ("fec0::1", "ff02::1", "127.0.0.1", "10.0.0.1", "name"):
            with self.subTest(text=text):
                self.assertFalse(netutil.is_link_local_unicast(text))

    def test_parse_uint8(self) -> None:
        self.assertEqual(netutil.parse_uint8("0"), 0)
        self.assertEqual(netutil.parse_uint8("255"), 255)
        for text, kind in (("256", "value out of range"), ("", "invalid syntax"), ("1_0", "")):
            with self.subTest(text=text):
                with self.assertRaises(YggError) as caught:
                    netutil.parse_uint8(text)
                self.assertIn(kind or "invalid syntax", str(caught.exception))

    def test_go_quote(self) -> None:
        self.assertEqual(netutil.go_quote('a"b\\c'), '"a\\"b\\\\c"')
        self.assertEqual(netutil.go_quote("\x00\n\x7f"), '"\\x00\\n\\x7f"')
        self.assertEqual(netutil.go_quote("é"), '"é"')


# (obs) What yggdrasil 0.5.12's admin ``addPeer`` answered (None = accepted), collected
# 2026-12-05 over its admin socket; each URI was tried on a fresh host so none collided.
ADD_PEER_V05_OBSERVED = [
    ("tcp://1.2.3.4:5?maxbackoff=10s", "max backoff duration invalid"),
    ("tcp://1.2.3.4:5?maxbackoff=xyz", "max backoff duration invalid"),
    ("tcp://1.2.3.4:5?maxbackoff=-1m", "max backoff duration invalid"),
    ("tcp://1.2.3.4:5?maxbackoff=30", "max backoff duration invalid"),
    ("tcp://1.2.3.4:5?maxbackoff=1e3s", "max backoff duration invalid"),
    ("tcp://1.2.3.4:5?maxbackoff=9999999999h", "max backoff duration invalid"),
    ("tcp://1.2.3.4:5?maxbackoff=30s", None),
    ("tcp://1.2.3.4:5?maxbackoff=.5m", None),
    ("tcp://1.2.3.4:5?maxbackoff=", None),
    ("ws://1.2.3.4:5/path?maxbackoff=1h", None),
    ("ws://1.2.3.4:5?sni=foo", None),
    ("sockstls://1.2.3.4:5/a:1", None),
    ("quic://1.2.3.4:5", None),
]


class V05OptionTests(SynchronousTestCase):
    """What 0.5.12 added: ``?maxbackoff=``, the ws, wss and sockstls schemes, and a
    WebSocket listener's ``?origin=`` (0.5.14)."""

    def test_add_peer_answers_match_go_05(self) -> None:
        for text, expected in ADD_PEER_V05_OBSERVED:
            with self.subTest(uri=text):
                if expected is None:
                    parse_peer_uri(text)
                    continue
                with self.assertRaises(LinkURIError) as caught:
                    parse_peer_uri(text)
                self.assertEqual(str(caught.exception), expected)

    def test_max_backoff_in_seconds(self) -> None:
        self.assertIsNone(parse_peer_uri("tcp://h:1").max_backoff)
        self.assertEqual(parse_peer_uri("tcp://h:1?maxbackoff=30s").max_backoff, 30.0)
        self.assertEqual(parse_peer_uri("tcp://h:1?maxbackoff=1h30m").max_backoff, 5400.0)
        self.assertEqual(parse_peer_uri("tcp://h:1?maxbackoff=.5m").max_backoff, 30.0)
        # "+" in a query is a space, which Go's duration parser refuses.
        with self.assertRaises(LinkURIError):
            parse_peer_uri("tcp://h:1?maxbackoff=+30s")
        self.assertEqual(parse_peer_uri("tcp://h:1?maxbackoff=%2B30s").max_backoff, 30.0)

    def test_go_durations(self) -> None:
        good = {
            "0": 0,
            "1ns": 1,
            "1.5h": 5_400_000_000_000,
            "-1m": -60_000_000_000,
            "5.s": 5_000_000_000,
            "1\u00b5s": 1_000,
            "1\u03bcs": 1_000,
            "300ms": 300_000_000,
            "2562047h47m16.854775807s": (1 << 63) - 1,
            "0.000000000000000000000001s": 0,
        }
        for text, value in good.items():
            with self.subTest(text=text):
                self.assertEqual(parse_go_duration(text), value)
        for text in ("", "30", ".s", "1e3s", "1x", "1.5.5s", "2562047h47m16.854775808s", "-"):
            with self.subTest(text=text):
                with self.assertRaises(ValueError):
                    parse_go_duration(text)

    def test_websocket_uris(self) -> None:
        peer = parse_peer_uri("ws://[::1]:80/a%20b/c?password=x&key=00&maxbackoff=1h")
        self.assertEqual((peer.scheme, peer.host, peer.port), ("ws", "::1", 80))
        # Go's RequestURI, less the password it would send in clear.
        self.assertEqual(peer.resource, "/a%20b/c?key=00&maxbackoff=1h")
        self.assertEqual(peer.link_password, "x")
        self.assertEqual(peer.link_name(), "ws://[::1]:80/a%20b/c")
        self.assertEqual(parse_peer_uri("wss://example.com:443").resource, "/")
        self.assertEqual(parse_peer_uri("wss://example.com:443").host_name(), "example.com")
        self.assertIsNone(parse_peer_uri("wss://127.0.0.1:443?sni=x.example").host_name())
        self.assertEqual(parse_peer_uri("ws://h:1?password=x").resource, "/")

    def test_sockstls(self) -> None:
        peer = parse_peer_uri("sockstls://proxy.example:1080/target.example:9001?sni=name")
        self.assertEqual(peer.path, "target.example:9001")
        self.assertEqual(peer.server_name(), "name")
        self.assertEqual(parse_peer_uri("sockstls://proxy:1/t:2").server_name(), "proxy")

    def test_websocket_listeners_and_origins(self) -> None:
        listener = parse_listen_uri("ws://127.0.0.1:0?origin=*.example&origin=&origin=a:1")
        self.assertEqual(listener.origins, ("*.example", "a:1"))
        self.assertEqual(parse_listen_uri("wss://[::]:0").scheme, "wss")
        with self.assertRaises(LinkURIError) as caught:
            parse_listen_uri("sockstls://h:1/t:2")
        self.assertEqual(str(caught.exception), 'unrecognised scheme "sockstls"')
