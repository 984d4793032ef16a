"""This node's NodeInfo: the config's ``NodeInfo`` plus build details (spec yggdrasil §4.3).

Encoded once, as Go's json.Marshal encodes a map decoded from HJSON: keys sorted, numbers
as float64, ``<``/``>``/``&`` escaped.  Unless NodeInfoPrivacy, ``buildname``,
``buildversion``, ``buildplatform`` and ``buildarch`` are added, replacing user keys of the
same name.  At most 16384 bytes.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from typing import Any

from ygg import BUILD_NAME, __version__, gojson
from ygg.errors import ConfigError

MAX_SIZE = 16384

#: Python's machine names to Go's GOARCH, which crawlers and maps display.
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv8l": "arm",
    "mips": "mips",
    "mips64": "mips64",
    "ppc64le": "ppc64le",
    "riscv64": "riscv64",
    "s390x": "s390x",
}


def go_arch(machine: str | None = None) -> str:
    machine = (machine or platform.machine()).lower()
    return _GOARCH.get(machine, machine)


def go_os() -> str:
    return {"linux": "linux", "darwin": "darwin", "win32": "windows"}.get(
        sys.platform, sys.platform
    )


def build_node_info(given: Mapping[str, Any] | None, privacy: bool) -> bytes:
    """The NodeInfo bytes this node answers with; ConfigError if they are too long."""
    info = dict(given or {})
    if not privacy:
        info["buildname"] = BUILD_NAME
        info["buildversion"] = __version__
        info["buildplatform"] = go_os()
        info["buildarch"] = go_arch()
    encoded = gojson.dumps(_plain(info), sort_keys=True, numbers_as_float=True).encode()
    if len(encoded) > MAX_SIZE:
        raise ConfigError("NodeInfo", f"exceeds max length of {MAX_SIZE} bytes")
    return encoded


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
