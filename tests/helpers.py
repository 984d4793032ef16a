"""Shared test helpers: test data, the reference Go node's binaries, and requirements.

Tests that need the real Go node or root skip when it is missing, saying why — except when
``YGG_REQUIRE_INTEROP=1`` (set by the project's test command, and so in CI): then a missing
requirement fails the test, so the interoperability tests can never be silently skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SkipTest

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
YGGDRASIL = os.environ.get("YGGDRASIL", "/usr/sbin/yggdrasil")
YGGDRASILCTL = os.environ.get("YGGDRASILCTL", "/usr/sbin/yggdrasilctl")
#: The v0.5 reference: Debian trixie's 0.5.12, unpacked by scripts/install-yggdrasil-v05.sh.
YGG05_DIR = os.environ.get("YGG05_DIR", "/opt/yggdrasil-0.5")
YGGDRASIL05 = f"{YGG05_DIR}/usr/sbin/yggdrasil"
YGGDRASILCTL05 = f"{YGG05_DIR}/usr/sbin/yggdrasilctl"
PYTHON = sys.executable
YGG = str(Path(sys.executable).parent / "ygg")
TWISTD = str(Path(sys.executable).parent / "twistd")


def load_json(relative: str) -> Any:
    return json.loads((DATA / relative).read_text())


def _missing(reason: str) -> None:
    if os.environ.get("YGG_REQUIRE_INTEROP") == "1":
        raise AssertionError(f"required for this run but missing: {reason}")
    raise SkipTest(reason)


def require_go() -> None:
    """The Debian yggdrasil 0.4.7 binaries (installed by scripts/setup.sh --test)."""
    if not (os.access(YGGDRASIL, os.X_OK) and os.access(YGGDRASILCTL, os.X_OK)):
        _missing(f"the reference node {YGGDRASIL} is not installed")


def require_go05() -> None:
    """Debian trixie's yggdrasil 0.5.12 binaries (scripts/install-yggdrasil-v05.sh)."""
    if not (os.access(YGGDRASIL05, os.X_OK) and os.access(YGGDRASILCTL05, os.X_OK)):
        _missing(f"the v0.5 reference node {YGGDRASIL05} is not installed")


def require_root() -> None:
    if os.geteuid() != 0:
        _missing("needs root (TUN devices and network namespaces)")


def require_tool(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        _missing(f"the tool {name!r} is not installed")
    return path  # type: ignore[return-value]
