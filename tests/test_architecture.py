"""The rules of the house that code can check: the sans-IO core stays sans-IO, features use
only the public API, and the node's own modules name no feature."""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import ROOT

SANS_IO = ("ygg/network", "ygg/session", "ygg/v05/network", "ygg/v05/session")
FORBIDDEN = (
    "socket",
    "select",
    "selectors",
    "threading",
    "asyncio",
    "subprocess",
    "twisted.internet.reactor",
)


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


class SansIOTests(SynchronousTestCase):
    def test_no_io_in_the_core(self) -> None:
        for package in SANS_IO:
            for path in sorted((ROOT / package).glob("*.py")):
                for name in imports(path):
                    for forbidden in FORBIDDEN:
                        self.assertFalse(
                            name == forbidden or name.startswith(forbidden + "."),
                            f"{path.relative_to(ROOT)} imports {name}",
                        )
                    if name.startswith("twisted.") and not name.startswith(
                        "twisted.internet.interfaces"
                    ):
                        self.fail(f"{path.relative_to(ROOT)} imports {name}")


class KernelAccessTests(SynchronousTestCase):
    def test_only_tun_and_radv_use_pyroute2(self) -> None:
        """Rule 3: addresses and routes are configured by the TUN and RAdv only."""
        allowed = {"ygg/tun/device.py", "ygg/popura/radv/service.py"}
        for path in sorted((ROOT / "ygg").rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if any(name.startswith("pyroute2") for name in imports(path)):
                self.assertIn(relative, allowed)


#: What a feature may import of ygg (ARCHITECTURE rule 4, 8): the public API.
PUBLIC = ("ygg.interfaces", "ygg.address", "ygg.errors", "ygg.gojson", "ygg.adminclient")
FEATURES = ROOT / "ygg" / "popura"


def feature_packages() -> list[Path]:
    return sorted(p for p in FEATURES.iterdir() if (p / "__init__.py").exists())


def public(name: str, package: str) -> bool:
    """Whether a feature in ``package`` may import ``name`` (``from ygg import x`` shows as
    "ygg" and "ygg.x": the second is judged)."""
    if not name.startswith("ygg.") or name == package or name.startswith(package + "."):
        return True  # not ygg's (stdlib, Twisted…), or the feature's own modules
    return any(name == p or name.startswith(p + ".") for p in PUBLIC)


class FeatureTests(SynchronousTestCase):
    def test_features_import_only_the_public_api(self) -> None:
        packages = feature_packages()
        self.assertEqual([p.name for p in packages], ["autopeer", "crawler", "meshname", "radv"])
        for package in packages:
            dotted = f"ygg.popura.{package.name}"
            for path in sorted(package.rglob("*.py")):
                for name in imports(path):
                    self.assertTrue(
                        public(name, dotted),
                        f"{path.relative_to(ROOT)} imports {name}, which is not public API",
                    )

    def test_the_check_fails_for_a_private_import(self) -> None:
        self.assertFalse(public("ygg.links.netutil", "ygg.popura.autopeer"))
        self.assertFalse(public("ygg.admin.registry.Method", "ygg.popura.crawler"))
        self.assertFalse(public("ygg.popura.meshname", "ygg.popura.radv"))  # another feature
        self.assertTrue(public("ygg.interfaces.Method", "ygg.popura.crawler"))
        self.assertTrue(public("ygg.popura.crawler.service", "ygg.popura.crawler"))

    def test_config_and_cli_name_no_feature(self) -> None:
        config = (ROOT / "ygg" / "config.py").read_text()
        for section in ("Autopeering", "Meshname", "RAdv", "DHTCrawler"):
            self.assertNotIn(section, config)
        for module in ("ygg/cli.py", "ygg/config.py", "ygg/service.py", "ygg/tap.py"):
            for name in imports(ROOT / module):
                self.assertFalse(name.startswith("ygg.popura"), f"{module} imports {name}")
