"""Reading yggdrasil 0.4.7's config files, defaults, errors and the printed forms."""

from __future__ import annotations

import json
from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import DATA, load_json
from ygg import config
from ygg.errors import ConfigError
from ygg.keys import NodeKey


def parse(text: str) -> config.NodeConfig:
    return config.parse(text)[0]


@dataclass(frozen=True)
class Thing:
    """A feature's schema, as a plugin declares it (config.py names no feature)."""

    enable: bool = config.setting("Enable", False)
    size: int = config.setting("Size", 3, min=1)
    mode: str = config.setting("Mode", "fast", choices=("fast", "slow"))
    names: tuple[str, ...] = config.setting("Names", ())


THING = config.Section("Thing", Thing, "A thing, as a feature's section.")


class GoFilesTests(SynchronousTestCase):
    def test_genconf_hjson_loads(self) -> None:
        """The Go node's own genconf output loads with its values."""
        cfg, warnings = config.load(str(DATA / "genconf.hjson"))
        self.assertEqual(warnings, [])
        self.assertEqual(cfg.admin_listen, "unix:///var/run/yggdrasil/yggdrasil.sock")
        self.assertEqual(
            cfg.multicast_interfaces, (config.MulticastInterface(".*", True, True, 0, 0),)
        )
        self.assertEqual(cfg.if_name, "auto")
        self.assertEqual(cfg.if_mtu, 65535)
        self.assertEqual(cfg.node_info, {})
        self.assertEqual(cfg.key.public.hex(), cfg.public_key)
        self.assertTrue(cfg.key.seed_matches_public())

    def test_genconf_json_normalises_to_itself(self) -> None:
        """normaliseconf -json of the Go node's genconf -json is the same text."""
        text = (DATA / "genconf.json").read_text()
        self.assertEqual(config.to_json(parse(text)), text.rstrip("\n"))

    def test_hjson_output_reads_back(self) -> None:
        cfg = config.generate()
        text = config.to_hjson(cfg, sections="all", declared=[THING])
        self.assertIn("  # A thing, as a feature's section.", text.splitlines())
        again = parse(text)
        self.assertEqual(again.private_key, cfg.private_key)
        self.assertEqual(again.multicast_interfaces, cfg.multicast_interfaces)
        self.assertEqual(again.section("Thing", Thing), Thing())
        self.assertEqual(again.admin_shell, cfg.admin_shell)

    def test_declared_sections_are_normalised(self) -> None:
        cfg = parse('{"thing": {"size": 7}, "Other": {"x": 1}}')
        data = config.to_data(cfg, declared=[THING])
        self.assertEqual(data["Thing"], {"Enable": False, "Size": 7, "Mode": "fast", "Names": []})
        self.assertEqual(data["Other"], {"x": 1})  # nobody declares it: kept as read
        self.assertNotIn("Thing", config.to_data(parse("{}"), declared=[THING]))
        self.assertIn("Thing", config.to_data(parse("{}"), sections="all", declared=[THING]))

    def test_hjson_layout(self) -> None:
        text = config.to_hjson(config.generate())
        lines = text.splitlines()
        self.assertEqual(lines[0], "{")
        self.assertEqual(lines[-1], "}")
        self.assertIn("  Peers: []", lines)
        self.assertIn("  AdminListen: unix:///var/run/yggdrasil/yggdrasil.sock", lines)
        self.assertIn("  NodeInfo: {}", lines)
        self.assertIn("  MulticastInterfaces:", lines)
        self.assertIn("      Regex: .*", lines)
        self.assertTrue(any(line.startswith("  # ") for line in lines))


class DefaultsTests(SynchronousTestCase):
    def test_empty_object(self) -> None:
        cfg = parse("{}")
        self.assertEqual(cfg.peers, ())
        self.assertEqual(dict(cfg.interface_peers), {})
        self.assertEqual(cfg.listen, ())
        self.assertEqual(cfg.allowed_public_keys, ())
        self.assertEqual(cfg.if_mtu, 65535)
        self.assertFalse(cfg.node_info_privacy)
        self.assertIsNone(cfg.node_info)
        self.assertEqual(cfg.section("Thing", Thing), Thing())
        self.assertEqual(cfg.admin_amp.listen, "")

    def test_missing_private_key_is_a_fresh_identity(self) -> None:
        a, b = parse("{}"), parse("{}")
        self.assertNotEqual(a.private_key, b.private_key)
        self.assertEqual(a.public_key, a.key.public.hex())

    def test_public_key_is_last_half_of_private_key(self) -> None:
        vector = load_json("keys.json")["vectors"][-1]
        cfg = parse(json.dumps({"PrivateKey": vector["private_key"]}))
        self.assertEqual(cfg.key.public.hex(), vector["private_key"][64:])
        self.assertFalse(cfg.key.seed_matches_public())

    def test_keys_are_case_insensitive(self) -> None:
        cfg = parse('{"peers": ["tcp://127.0.0.1:1"], "IFMTU": 1500, "tHING": {"enable": true}}')
        self.assertEqual(cfg.peers, ("tcp://127.0.0.1:1",))
        self.assertEqual(cfg.if_mtu, 1500)
        self.assertTrue(cfg.section("Thing", Thing).enable)

    def test_multicast_first_entry_inherits_beacon_and_listen(self) -> None:
        cfg = parse(
            '{"MulticastInterfaces": [{"Regex": "eth0"}, {"Regex": "wlan0", "Priority": 300},'
            ' {"Regex": "br0", "Beacon": false}]}'
        )
        first, second = cfg.multicast_interfaces[:2]
        self.assertEqual((first.beacon, first.listen), (True, True))
        self.assertEqual((second.beacon, second.listen), (False, False))
        self.assertEqual(second.priority, 44)  # Go keeps the low 8 bits of 300
        self.assertEqual(
            parse('{"MulticastInterfaces": [{"Beacon": false}]}').multicast_interfaces[0].beacon,
            False,
        )
        self.assertEqual(parse('{"MulticastInterfaces": []}').multicast_interfaces, ())

    def test_null_values(self) -> None:
        cfg = parse('{"Peers": null, "NodeInfo": null, "IfMTU": null, "InterfacePeers": null}')
        self.assertEqual(cfg.peers, ())
        self.assertIsNone(cfg.node_info)
        self.assertEqual(cfg.if_mtu, 65535)
        self.assertEqual(dict(cfg.interface_peers), {})

    def test_single_listen_string(self) -> None:
        """0.4.7 no longer takes a bare string for Listen; say so instead of guessing."""
        with self.assertRaises(ConfigError) as caught:
            parse('{"Listen": "tcp://[::]:1"}')
        self.assertEqual(str(caught.exception), 'Listen: expected a list, got "tcp://[::]:1"')

    def test_utf16_with_bom(self) -> None:
        text = '{"IfName": "ygg9"}'
        for encoding in ("utf-16-le", "utf-16-be"):
            bom = b"\xff\xfe" if encoding.endswith("le") else b"\xfe\xff"
            self.assertEqual(config.parse(bom + text.encode(encoding))[0].if_name, "ygg9")

    def test_unknown_keys_are_kept(self) -> None:
        cfg = parse('{"SessionFirewall": {"Enable": true}, "Peers": []}')
        self.assertIn("SessionFirewall", cfg.extra)

    def test_short_allowed_key_warns(self) -> None:
        _, warnings = config.parse('{"AllowedPublicKeys": ["00ff"]}')
        self.assertEqual(len(warnings), 1)
        self.assertIn("AllowedPublicKeys[0]", warnings[0])

    def test_effective_mtu(self) -> None:
        self.assertEqual(config.effective_mtu(65535, 53049), 53049)
        self.assertEqual(config.effective_mtu(100, 53049), 1280)
        self.assertEqual(config.effective_mtu(9000, 53049), 9000)


class ErrorTests(SynchronousTestCase):
    def assertConfigError(self, text: str, key: str, reason_part: str) -> None:
        with self.assertRaises(ConfigError) as caught:
            config.parse(text)
        self.assertEqual(caught.exception.key, key)
        self.assertIn(reason_part, caught.exception.reason)
        self.assertNotIn("\n", str(caught.exception))

    def test_bad_values_name_their_key(self) -> None:
        self.assertConfigError('{"IfMTU": "big"}', "IfMTU", 'expected an integer, got "big"')
        self.assertConfigError("{\nIfMTU: big\n}", "IfMTU", "expected an integer")
        self.assertConfigError('{"IfMTU": -5}', "IfMTU", "at least 0")
        self.assertConfigError('{"IfMTU": 1.5}', "IfMTU", "expected an integer")
        self.assertConfigError('{"Listen": 5}', "Listen", "expected a list")
        self.assertConfigError('{"Peers": [1]}', "Peers[0]", "expected a string")
        self.assertConfigError('{"NodeInfoPrivacy": "yes"}', "NodeInfoPrivacy", "true or false")
        self.assertConfigError('{"NodeInfo": [1]}', "NodeInfo", "expected an object")
        self.assertConfigError('{"PrivateKey": "zz"}', "PrivateKey", "hexadecimal")
        self.assertConfigError('{"PrivateKey": "00"}', "PrivateKey", "128 hex digits")
        self.assertConfigError('{"AllowedPublicKeys": ["xyz"]}', "AllowedPublicKeys[0]", "hex")
        self.assertConfigError(
            '{"MulticastInterfaces": [{"Regex": "("}]}', "MulticastInterfaces[0].Regex", "regex"
        )
        self.assertConfigError(
            '{"MulticastInterfaces": [{"Port": 70000}]}', "MulticastInterfaces[0].Port", "65535"
        )
        self.assertConfigError('{"InterfacePeers": {"eth0": "x"}}', "InterfacePeers.eth0", "list")
        self.assertConfigError('{"AdminAMP": {"Listen": 1}}', "AdminAMP.Listen", "a string")
        self.assertConfigError('{"AdminShell": true}', "AdminShell", "expected an object")
        for text, key, reason in (
            ('{"Thing": {"Enable": 1}}', "Thing.Enable", "true or false"),
            ('{"Thing": {"Mode": "best"}}', "Thing.Mode", "one of"),
            ('{"Thing": true}', "Thing", "expected an object"),
        ):
            with self.assertRaises(ConfigError) as caught:
                parse(text).section("Thing", Thing)
            self.assertEqual(caught.exception.key, key)
            self.assertIn(reason, str(caught.exception))

    def test_hostile_files_give_one_line(self) -> None:
        """Numbers beyond a double and deep nesting: a ConfigError, not a traceback."""
        self.assertConfigError("{IfMTU: 1e400}", "", "a number is too large")
        self.assertConfigError('{"NodeInfo": {"x": 1e999}}', "", "a number is too large")
        self.assertConfigError('{"NodeInfo": ' + "[" * 1000 + "]" * 1000 + "}", "", "nested")
        self.assertConfigError(
            '{"NodeInfo": ' + '{"a": ' * 150 + "1" + "}" * 150 + "}", "NodeInfo", "nested"
        )
        deep = '{"NodeInfo": ' + '{"a": ' * 50 + "1" + "}" * 50 + "}"
        self.assertEqual(parse(deep).if_mtu, 65535)

    def test_if_name_longer_than_the_kernel_allows(self) -> None:
        self.assertConfigError('{"IfName": "' + "x" * 40 + '"}', "IfName", "15 bytes")
        self.assertEqual(parse('{"IfName": "' + "x" * 15 + '"}').if_name, "x" * 15)

    def test_unknown_keys_inside_sections_are_warnings(self) -> None:
        cfg, warnings = config.parse(
            '{"AdminShell": {"Lisen": "x"}, "MulticastInterfaces": [{"Regexx": "a"}],'
            ' "Thing": {"Sise": 2, "size": 4}}'
        )
        self.assertEqual(
            sorted(warnings),
            ["AdminShell.Lisen: unknown key", "MulticastInterfaces[0].Regexx: unknown key"],
        )
        unknown: list[str] = []
        self.assertEqual(cfg.section("Thing", Thing, unknown).size, 4)
        self.assertEqual(unknown, ["Thing.Sise: unknown key"])
        self.assertEqual(config.parse(config.to_hjson(config.generate(), sections="all"))[1], [])

    def test_bad_files(self) -> None:
        self.assertConfigError("{", "", "not valid HJSON")
        self.assertConfigError("[1, 2]", "", "must hold an object")
        self.assertConfigError('"text"', "", "must hold an object")

    def test_load_missing_file(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            config.load("/nonexistent/ygg.conf")
        self.assertIn("cannot read /nonexistent/ygg.conf", str(caught.exception))


class OverrideTests(SynchronousTestCase):
    def test_override_section(self) -> None:
        section = config.override(Thing(), {"Enable": True, "size": 9}, "--thing")
        self.assertEqual((section.enable, section.size), (True, 9))
        with self.assertRaises(ConfigError):
            config.override(Thing(), {"Enable": "x"}, "--thing")

    def test_section_of_a_third_party_schema(self) -> None:
        cfg = parse('{"thing": {"enable": true, "size": 7}}')
        self.assertEqual(cfg.section("Thing", Thing), Thing(True, 7))
        self.assertEqual(parse("{}").section("Thing", Thing), Thing(False, 3))
        with self.assertRaises(ConfigError) as caught:
            parse('{"Thing": {"Size": 0}}').section("Thing", Thing)
        self.assertEqual(caught.exception.key, "Thing.Size")

    def test_with_section(self) -> None:
        cfg = parse('{"THING": {"Size": 2}}').with_section("Thing", {"Size": 5})
        self.assertEqual(cfg.section("thing", Thing).size, 5)
        self.assertEqual([k for k in cfg.extra], ["Thing"])

    def test_node_key(self) -> None:
        key = NodeKey.generate()
        self.assertEqual(parse(json.dumps({"PrivateKey": key.private.hex()})).key, key)
