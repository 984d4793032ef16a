"""The ``ygg`` command line, in both spellings, against what yggdrasil 0.4.7 prints."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import DATA, YGGDRASIL, load_json, require_go
from ygg import address as addr
from ygg import cli, config
from ygg.keys import NodeKey


def run_cli(*argv: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(list(argv))
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


class ConfigFileMixin:
    def write_text(self, text: str) -> str:
        fd, path = tempfile.mkstemp(suffix=".conf")
        os.close(fd)
        Path(path).write_text(text)
        self.addCleanup(os.unlink, path)  # type: ignore[attr-defined]
        return path

    def write_config(self, data: dict) -> str:
        return self.write_text(json.dumps(data))


class AddressCommandTests(ConfigFileMixin, SynchronousTestCase):
    def test_vectors_both_spellings(self) -> None:
        """-address and -subnet print what the Go binary printed, for every vector."""
        for vector in load_json("keys.json")["vectors"]:
            path = self.write_config({"PrivateKey": vector["private_key"]})
            for argv in (
                ["-useconffile", path, "-address"],
                ["--useconffile=" + path, "-address"],
                ["address", "--useconffile", path],
            ):
                self.assertEqual(run_cli(*argv), (0, vector["address_flag_output"] + "\n", ""))
            for argv in (["-useconffile", path, "-subnet"], ["subnet", "-c", path]):
                self.assertEqual(run_cli(*argv), (0, vector["subnet_flag_output"] + "\n", ""))
            self.assertEqual(
                run_cli("publickey", "--useconffile", path)[1].strip(), vector["private_key"][64:]
            )

    def test_useconf_reads_stdin(self) -> None:
        vector = load_json("keys.json")["vectors"][0]
        stdin = json.dumps({"PrivateKey": vector["private_key"]}).encode()
        self.assertEqual(run_cli("-useconf", "-address", stdin=stdin)[1].strip(), vector["address"])
        self.assertEqual(run_cli("subnet", "--useconf", stdin=stdin)[1].strip(), vector["subnet"])

    def test_no_config_source(self) -> None:
        code, out, err = run_cli("-address")
        self.assertEqual(code, 0)
        self.assertTrue(out.startswith("Usage:\n"))
        self.assertIn(
            "Error: You need to specify some config data using -useconf or -useconffile.", out
        )
        self.assertIn("-useconffile", err)

    def test_bad_config_is_one_line(self) -> None:
        path = self.write_config({"PrivateKey": "zz"})
        code, out, err = run_cli("-useconffile", path, "-address")
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(err, "ygg: PrivateKey: not a hexadecimal string\n")

    def test_unknown_flag(self) -> None:
        code, _, err = run_cli("-frobnicate")
        self.assertEqual(code, 2)
        self.assertIn("flag provided but not defined: -frobnicate", err)


class GenconfTests(ConfigFileMixin, SynchronousTestCase):
    def test_genconf_hjson_parses_with_fresh_key(self) -> None:
        code, out, _ = run_cli("-genconf")
        self.assertEqual(code, 0)
        cfg = config.parse(out)[0]
        self.assertTrue(cfg.key.seed_matches_public())
        self.assertEqual(cfg.public_key, cfg.key.public.hex())
        self.assertIn("  # ", out)
        self.assertNotEqual(config.parse(run_cli("genconf")[1])[0].private_key, cfg.private_key)

    def test_genconf_json_has_go_keys_in_order(self) -> None:
        code, out, _ = run_cli("-genconf", "-json")
        self.assertEqual(code, 0)
        data = json.loads(out)
        self.assertEqual(list(data), list(config.CORE_KEYS))
        go_sample = load_json("genconf.json")
        for key in config.CORE_KEYS:
            if key not in ("PublicKey", "PrivateKey"):
                self.assertEqual(data[key], go_sample[key], key)

    def test_normaliseconf(self) -> None:
        text = (DATA / "genconf.json").read_text()
        path = self.write_config(json.loads(text))
        self.assertEqual(run_cli("-useconffile", path, "-normaliseconf", "-json"), (0, text, ""))
        self.assertEqual(run_cli("normaliseconf", "--useconffile", path, "--json")[1], text)
        code, out, _ = run_cli("-normaliseconf", "-useconffile", path)
        self.assertEqual(code, 0)
        self.assertEqual(config.parse(out)[0].private_key, json.loads(text)["PrivateKey"])

    def test_normaliseconf_keeps_popura_sections(self) -> None:
        path = self.write_config({"Meshname": {"enable": True}})
        data = json.loads(run_cli("-useconffile", path, "-normaliseconf", "-json")[1])
        self.assertEqual(data["Meshname"]["Enable"], True)
        self.assertNotIn("RAdv", data)

    def test_version(self) -> None:
        for argv in (["-version"], ["version"]):
            code, out, _ = run_cli(*argv)
            self.assertEqual(code, 0)
            self.assertRegex(out, r"^Build name: ygg\nBuild version: \d+\.\d+\.\d+\n$")


class AgainstGoBinaryTests(ConfigFileMixin, SynchronousTestCase):
    """Fresh keys nobody has seen: ours and the Go binary print the same address and subnet."""

    def keys(self) -> list[bytes]:
        private = [NodeKey.generate().private for _ in range(24)]
        # Public halves with many leading zero bits (rare in generated keys).
        for zeros in (0, 1, 7, 8, 9, 15, 16, 17, 31, 63, 64, 100, 127, 128, 200, 254, 255):
            value = (1 << (255 - zeros)) | int.from_bytes(os.urandom(32), "big") >> (zeros + 1)
            private.append(os.urandom(32) + value.to_bytes(32, "big"))
        return private

    def test_address_and_subnet_match_go(self) -> None:
        require_go()
        for private in self.keys():
            path = self.write_config({"PrivateKey": private.hex()})
            for flag in ("-address", "-subnet"):
                go = subprocess.run(
                    [YGGDRASIL, "-useconffile", path, flag],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                self.assertEqual(go.returncode, 0, go.stderr)
                code, ours, _ = run_cli("-useconffile", path, flag)
                self.assertEqual((code, ours), (0, go.stdout), private.hex())

    def test_go_reads_our_genconf(self) -> None:
        require_go()
        for argv in (["-genconf"], ["-genconf", "-json"]):
            text = run_cli(*argv)[1]
            path = self.write_text(text)
            go = subprocess.run(
                [YGGDRASIL, "-useconffile", path, "-address"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            key = config.parse(text)[0].key.public
            self.assertEqual(go.stdout.strip(), addr.format_address(addr.address_for_key(key)))
