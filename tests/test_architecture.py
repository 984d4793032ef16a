"""The rules of the house that code can check: the sans-IO core stays sans-IO."""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import ROOT

SANS_IO = ("ygg/network", "ygg/session", "ygg/v05/network")
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
        allowed = {"ygg/tun/device.py", "ygg/popura/radv.py"}
        for path in sorted((ROOT / "ygg").rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if any(name.startswith("pyroute2") for name in imports(path)):
                self.assertIn(relative, allowed)
