"""Features as an outside author ships them: packages installed with pip, the node run as a
user runs it, and driven with the real yggdrasilctl.

contrib/example-plugin (PeerWatch) is installed the three ways users install: with
``pip install --target DIR`` plus PYTHONPATH, into a virtual environment, and editable.
Two test packages (tests/data/plugins) bring a feature that raises in makeService, one that
cannot be imported and one that claims PeerWatch's admin method name.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import DATA, PYTHON, ROOT, TWISTD, YGG, YGGDRASILCTL, require_go, require_root
from tests.nodes import GoNode
from tests.processes import Process, run

EXAMPLE = ROOT / "contrib" / "example-plugin"
TEST_PLUGINS = DATA / "plugins"


def pip_install(python: str, source: Path, *how: str) -> None:
    """``python -m pip install`` a copy of ``source`` (pip builds in the source tree)."""
    work = tempfile.mkdtemp(prefix="ygg-pip-")
    copy = shutil.copytree(
        source,
        os.path.join(work, source.name),
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".venv", ".git"),
    )
    argv = [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    result = subprocess.run([*argv, *how, copy], capture_output=True, text=True, timeout=300)
    if "-e" not in how:
        shutil.rmtree(work, True)
    if result.returncode != 0:
        raise AssertionError(f"pip install of {source.name} failed:\n{result.stderr}")


def make_venv(where: str) -> str:
    """A new virtual environment that sees ygg's own (as a venv created for ygg would)."""
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", where], check=True, timeout=120)
    python = os.path.join(where, "bin", "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # ygg and its libraries are those of the test run's environment.
    Path(purelib, "ygg-test-base.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def quiet_config(directory: str, **extra: object) -> str:
    """A config file that opens nothing but an admin socket in ``directory``."""
    path = os.path.join(directory, "node.conf")
    cfg = {
        "AdminListen": f"unix://{directory}/admin.sock",
        "IfName": "none",
        "MulticastInterfaces": [],
        **extra,
    }
    Path(path).write_text(json.dumps(cfg))
    return path


class PluginCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ygg-plug-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def start(self, argv: list[str], env: dict[str, str], checkout: bool = True) -> Process:
        proc = Process(argv, env=env, cwd=self.dir, checkout=checkout)
        self.addCleanup(proc.kill)
        proc.wait_for("Your IPv6 subnet is")
        return proc

    def ctl(self, *args: str) -> str:
        result = run([YGGDRASILCTL, f"-endpoint=unix://{self.dir}/admin.sock", *args])
        return result.stdout + result.stderr


class TargetInstallTests(PluginCase):
    """``pip install --target SITE`` of PeerWatch and the two test packages."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.site = tempfile.mkdtemp(prefix="ygg-plug-site-")
        for package in (EXAMPLE, TEST_PLUGINS / "broken", TEST_PLUGINS / "squatter"):
            pip_install(PYTHON, package, "--target", cls.site)

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.site, True)

    def test_installed_layout(self) -> None:
        """Each package ships its own modules; nothing lands in ygg's own package."""
        self.assertFalse(os.path.exists(os.path.join(self.site, "ygg")))
        self.assertTrue(os.path.exists(os.path.join(self.site, "ygg_peerwatch", "__init__.py")))

    def test_a_node_with_good_and_bad_plugins(self) -> None:
        require_go()
        go = GoNode(os.path.join(self.dir, "go"), listen=["tcp://127.0.0.1:0"]).start()
        self.addCleanup(go.stop)
        path = quiet_config(
            self.dir,
            Peers=[go.listen_uri("tcp")],
            PeerWatch={"Enable": True, "Interval": 1, "Intervall": 5},
            Broken={"Enable": True},
            Squatter={"Enable": True},
        )
        proc = self.start([YGG, "run", "--config", path], {"PYTHONPATH": self.site})
        proc.wait_for(f"PeerWatch: peer {go.key} up")
        # The admin door is up and answers throughout.
        self.assertIn('"key"', self.ctl("-json", "getSelf"))
        lines = proc.output.splitlines()

        def about(word: str) -> list[str]:
            return [line.split(" ", 2)[2] for line in lines if word in line]

        self.assertEqual(
            about("broken"),
            [
                "Feature broken failed to start: RuntimeError: the broken plugin cannot start; "
                "it is off",
                "Features: autopeer (off), broken (failed: RuntimeError: the broken plugin "
                "cannot start), crawler (off), meshname (off), peerwatch (on), radv (off), "
                "squatter (on), unimportable (failed: ModuleNotFoundError: No module named "
                "'ygg_no_such_module')",
            ],
        )
        self.assertEqual(
            about("unimportable failed"),
            [
                "Feature unimportable failed to load: ModuleNotFoundError: No module named "
                "'ygg_no_such_module'"
            ],
        )
        self.assertEqual(
            about("GETPEERWATCH"),
            [
                "Feature squatter: admin method GETPEERWATCH refused: the name is taken by "
                "feature peerwatch"
            ],
        )
        self.assertEqual(about("Intervall"), ["Config: PeerWatch.Intervall: unknown key"])
        self.assertNotIn("Traceback", proc.output)
        # PeerWatch's method through the real yggdrasilctl: its text, JSON, an error text.
        self.assertIn(go.key, self.ctl("getPeerWatch"))
        (event,) = json.loads(self.ctl("-json", "getPeerWatch"))["events"]
        self.assertEqual((event["event"], event["key"]), ("up", go.key))
        self.assertIn(
            "Admin socket returned an error: limit must be a whole number from 1, not 'x'",
            self.ctl("getPeerWatch", "limit=x"),
        )
        self.assertIn("getsquatter", self.ctl("list"))
        self.assertIn('"mine"', self.ctl("-json", "getSquatter"))
        self.assertIn('"key"', self.ctl("-json", "getSelf"))
        # Its command, from `ygg --help` to talking to the node.
        env = {"PYTHONPATH": self.site}
        self.assertIn("peerwatch", run([YGG, "--help"], env=env).stdout)
        result = run([YGG, "peerwatch", "--endpoint", f"unix://{self.dir}/admin.sock"], env=env)
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        self.assertRegex(result.stdout, rf"^\S+\+00:00 up   {go.key} tcp://127.0.0.1:\d+\n$")
        self.assertEqual(proc.stop(), 0)

    def test_switches_under_twistd(self) -> None:
        path = quiet_config(self.dir)
        argv = [TWISTD, "-n", "--pidfile=", "ygg", "--config", path, "--peerwatch"]
        proc = self.start([*argv, "--peerwatchinterval", "7"], {"PYTHONPATH": self.site})
        proc.wait_for("PeerWatch: looking at the peers every 7 s")
        self.assertEqual(proc.stop(), 0)

    def test_genconf_has_the_section(self) -> None:
        out = run([YGG, "genconf"], env={"PYTHONPATH": self.site}).stdout
        self.assertIn("  # PeerWatch (example plugin): log peers coming and going", out)
        self.assertIn("    Interval: 10", out)

    def test_setting_error_names_the_key(self) -> None:
        path = quiet_config(self.dir, PeerWatch={"Interval": 0})
        result = run([YGG, "run", "--config", path], env={"PYTHONPATH": self.site})
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr.strip(), f"ygg: {path}: PeerWatch.Interval: must be at least 1, got 0"
        )


class OtherInstallTests(PluginCase):
    """Into a virtual environment, and editable (setuptools' default editable mode)."""

    def check(self, python: str) -> None:
        path = quiet_config(self.dir, PeerWatch={"Enable": True})
        proc = self.start([python, "-m", "ygg.cli", "run", "--config", path], {})
        proc.wait_for("peerwatch (on)")
        self.assertEqual(proc.stop(), 0)
        self.assertNotIn("ignoring", proc.output)

    def test_into_a_venv(self) -> None:
        python = make_venv(os.path.join(self.dir, "venv"))
        pip_install(python, EXAMPLE)
        self.check(python)

    def test_editable(self) -> None:
        python = make_venv(os.path.join(self.dir, "venv"))
        pip_install(python, EXAMPLE, "-e")
        self.check(python)


def read_only_install(where: str) -> str:
    """A copy of this environment's packages as a system install is: owned by root, read-only,
    and with no twistd plugin cache yet (pip never writes one).  Links stand in for the
    packages except ``twisted/plugins``, the directory whose cache matters."""
    base = site.getsitepackages()[0]
    os.makedirs(os.path.join(where, "twisted"))
    for name in os.listdir(base):
        if name != "twisted":
            os.symlink(os.path.join(base, name), os.path.join(where, name))
    for name in os.listdir(os.path.join(base, "twisted")):
        if name != "plugins":
            os.symlink(os.path.join(base, "twisted", name), os.path.join(where, "twisted", name))
    plugins = shutil.copytree(
        os.path.join(base, "twisted", "plugins"),
        os.path.join(where, "twisted", "plugins"),
        ignore=shutil.ignore_patterns("dropin.cache", "__pycache__"),
    )
    for path in (plugins, os.path.join(where, "twisted"), where):
        os.chmod(path, 0o555)
    return where


class PluginCacheTests(PluginCase):
    def test_twistd_over_a_read_only_install(self) -> None:
        """twistd run without the right to write its plugin cache logs nothing about it.

        The install is root-owned and read-only, and the node runs without privileges: as
        uid 0 with every capability dropped, to which root-owned files without write bits
        are as read-only as to any other user (this machine's Python lives under /root,
        which other users cannot reach).  The base interpreter runs, so that the install is
        the only copy of Twisted and ygg it sees.
        """
        require_root()
        packages = read_only_install(os.path.join(self.dir, "site-packages"))
        self.addCleanup(
            lambda: [os.chmod(d, 0o755) for d, _, _ in os.walk(packages, followlinks=False)]
        )
        path = quiet_config(self.dir)
        python = os.path.join(sys.base_prefix, "bin", "python3")
        twistd = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
        argv = [python, "-s", "-c", twistd, "-n", "--pidfile=", "ygg", "-c", path]
        unprivileged = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
        for _ in range(2):  # the first start, and the next
            proc = self.start([*unprivileged, *argv], {"PYTHONPATH": packages}, checkout=False)
            self.assertEqual(proc.stop(), 0)
            self.assertNotIn("plugin cache", proc.output)
        self.assertFalse(os.path.exists(os.path.join(packages, "twisted/plugins/dropin.cache")))
