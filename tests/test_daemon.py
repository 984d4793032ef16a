"""The node as a user runs it: ``twistd -n ygg`` and ``ygg run``, as real processes.

Also the plugin framework end to end: the example third-party package in
contrib/example-plugin is installed into a temporary directory with pip and the node
started with that directory on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PYTHON, ROOT, TWISTD, YGG, YGGDRASIL, require_go, require_root
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


class ThirdPartyPluginTests(SynchronousTestCase):
    """contrib/example-plugin installed with pip into a directory of its own."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.site = tempfile.mkdtemp(prefix="ygg-plugin-site-")
        result = subprocess.run(
            [
                PYTHON,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                cls.site,
                str(ROOT / "contrib" / "example-plugin"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise AssertionError(f"pip install of the example plugin failed:\n{result.stderr}")

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.site, True)

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ygg-plugin-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.env = {"PYTHONPATH": self.site}

    def node(self, cfg: dict, *extra: str, argv0: str = "run") -> Process:
        path = os.path.join(self.dir, "node.conf")
        Path(path).write_text(json.dumps(quiet_config(**cfg)))
        argv = (
            [YGG, "run", "--config", path, *extra]
            if argv0 == "run"
            else [TWISTD, "-n", "--pidfile=", "ygg", "--config", path, *extra]
        )
        proc = Process(argv, env=self.env, cwd=self.dir)
        self.addCleanup(proc.kill)
        return proc

    def test_installed_layout(self) -> None:
        files = {str(p.relative_to(self.site)) for p in Path(self.site).rglob("*.py")}
        self.assertEqual(files, {"ygg/plugins/ygg_example.py"})

    def test_started_when_enabled(self) -> None:
        proc = self.node({"Example": {"Enable": True, "Greeting": "good morning"}})
        proc.wait_for("example feature: good morning from ")
        proc.wait_for("example (on)")
        proc.wait_for("Your IPv6 subnet is")
        self.assertEqual(proc.stop(), 0)
        self.assertIn("example feature: goodbye", proc.output)

    def test_not_started_when_not_enabled(self) -> None:
        proc = self.node({"Example": {"Enable": False}})
        proc.wait_for("example (off)")
        proc.wait_for("Your IPv6 subnet is")
        self.assertEqual(proc.stop(), 0)
        self.assertNotIn("example feature:", proc.output)

    def test_switches_under_twistd(self) -> None:
        proc = self.node({}, "--example", "--examplegreeting", "hi there", argv0="twistd")
        proc.wait_for("example feature: hi there from ")
        proc.wait_for("Your IPv6 subnet is")  # up, and SIGTERM handled from here on
        self.assertEqual(proc.stop(), 0)

    def test_feature_config_error_names_key(self) -> None:
        path = os.path.join(self.dir, "bad.conf")
        Path(path).write_text(json.dumps(quiet_config(Example={"Greeting": 5})))
        result = run([YGG, "run", "--config", path], env={**os.environ, **self.env})
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr.strip(), f"ygg: {path}: Example.Greeting: expected a string, got 5"
        )

    def test_unwritable_plugin_cache(self) -> None:
        """A plugin directory the node cannot write to: no error at start (or ever)."""
        site = tempfile.mkdtemp(prefix="ygg-ro-site-")
        self.addCleanup(shutil.rmtree, site, True)
        shutil.copytree(os.path.join(self.site, "ygg"), os.path.join(site, "ygg"))
        cache = os.path.join(site, "ygg", "plugins", "dropin.cache")
        if os.path.exists(cache):
            os.unlink(cache)
        os.mkdir(cache)  # writing the cache now fails, even for root
        self.env = {"PYTHONPATH": site}
        for _ in range(2):
            proc = self.node({"Example": {"Enable": True}})
            proc.wait_for("Your IPv6 subnet is")
            self.assertEqual(proc.stop(), 0)
            self.assertNotIn("Unable to write", proc.output)
            self.assertNotIn("plugin cache", proc.output)
