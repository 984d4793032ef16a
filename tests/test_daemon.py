"""The node as a user runs it: ``twistd -n ygg`` and ``ygg run``, as real processes.

Plugins installed as users install them: tests/test_plugin_packages.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import TWISTD, YGG, YGGDRASIL, require_go, require_root
from tests.processes import Process, run
from ygg import address as addr
from ygg import config


def quiet_config(**extra: object) -> dict:
    """A config that opens nothing: no admin socket, no TUN, no multicast."""
    return {"AdminListen": "none", "IfName": "none", "MulticastInterfaces": [], **extra}


class DaemonTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ygg-daemon-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.dir, name)
        Path(path).write_text(text)
        return path

    def start(self, *argv: str, env: dict[str, str] | None = None) -> Process:
        proc = Process(argv, env=env, cwd=self.dir)
        self.addCleanup(proc.kill)
        return proc

    def test_twistd_with_the_go_genconf(self) -> None:
        """twistd -n ygg --config <yggdrasil -genconf output> runs, logs, exits 0 on SIGTERM."""
        require_go()
        text = run([YGGDRASIL, "-genconf"]).stdout
        # The Go default opens an admin socket, a TUN and multicast; keep the test to itself.
        cfg = config.parse(text)[0]
        text = text.replace(
            "AdminListen: unix:///var/run/yggdrasil/yggdrasil.sock", "AdminListen: none"
        ).replace("IfName: auto", "IfName: none")
        text = text.replace("Regex: .*", "Regex: ^$")
        path = self.write("go.conf", text)
        proc = self.start(TWISTD, "-n", "--pidfile=", "ygg", "--config", path)
        address = addr.format_address(addr.address_for_key(cfg.key.public))
        subnet = addr.format_subnet(addr.subnet_for_key(cfg.key.public))
        proc.wait_for(f"Your IPv6 address is {address}")
        proc.wait_for(f"Your IPv6 subnet is {subnet}")
        self.assertEqual(proc.stop(signal.SIGTERM), 0, proc.output)
        self.assertIn("Stopped", proc.output)
        self.assertNotIn("Traceback", proc.output)

    def test_twistd_bad_mtu_is_one_line(self) -> None:
        path = self.write("bad.conf", '{\n  IfMTU: "big"\n}\n')
        result = run([TWISTD, "-n", "--pidfile=", "ygg", "--config", path], cwd=self.dir)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, "")
        self.assertEqual(
            result.stderr.strip().splitlines(),
            [f'ygg: {path}: IfMTU: expected an integer, got "big"'],
        )

    def test_ygg_run_bad_config(self) -> None:
        path = self.write("bad.conf", '{"Listen": 5}')
        result = run([YGG, "run", "--config", path])
        self.assertEqual(
            (result.returncode, result.stderr.strip()),
            (1, f"ygg: {path}: Listen: expected a list, got 5"),
        )
        result = run([YGG, "-useconffile", path])
        self.assertEqual(result.returncode, 1)

    def test_ygg_run_and_sigint(self) -> None:
        path = self.write("ok.conf", json.dumps(quiet_config(NodeInfo={"name": "x"})))
        proc = self.start(YGG, "run", "--config", path)
        line = proc.wait_for("Your IPv6 address is ")
        self.assertRegex(line, r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d Your IPv6 address is 2")
        self.assertEqual(proc.stop(signal.SIGINT), 0, proc.output)

    def test_autoconf(self) -> None:
        """The default config beacons on every interface and opens the default admin socket:
        run it in a network and mount namespace of its own, so nothing leaves this test."""
        require_root()
        isolate = [
            "unshare",
            "--net",
            "--mount",
            "--",
            "sh",
            "-c",
            'mount -t tmpfs tmpfs /var/run && exec "$0" "$@"',
        ]
        for argv in ([TWISTD, "-n", "--pidfile=", "ygg", "--autoconf"], [YGG, "-autoconf"]):
            proc = self.start(*isolate, *argv)
            proc.wait_for("Your IPv6 subnet is 3")
            self.assertIn(
                "UNIX admin socket listening on /var/run/yggdrasil/yggdrasil.sock", proc.output
            )
            self.assertEqual(proc.stop(), 0, proc.output)

    def test_no_config_source(self) -> None:
        result = run([YGG, "run"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("--config", result.stderr)

    def test_mismatched_key_halves_refuse_to_start(self) -> None:
        from tests.helpers import load_json

        vector = load_json("keys.json")["vectors"][-1]
        self.assertFalse(vector["seed_derives_public_key"])
        path = self.write("k.conf", json.dumps(quiet_config(PrivateKey=vector["private_key"])))
        result = run([YGG, "run", "--config", path])
        self.assertEqual(result.returncode, 1)
        self.assertIn("PrivateKey:", result.stderr)
        # ... while the address is still printed from the last 32 bytes, as Go does.
        self.assertEqual(
            run([YGG, "-useconffile", path, "-address"]).stdout.strip(),
            vector["address_flag_output"],
        )
