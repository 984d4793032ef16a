"""Test harness: real nodes as processes — the reference Go node and ours — and namespaces.

``GoNode`` runs Debian's yggdrasil 0.4.7 in a directory of its own, the way
``shared/lab/refnode.sh`` does (config from ``yggdrasil -genconf -json``, edited; admin on a
unix socket in the directory; stopped by PID); ``GoNode05`` runs the 0.5.12 judge the same
way.  ``YggNode`` runs ours with ``ygg run``.
Both are driven as a user would: through ``yggdrasilctl`` and their logs.  ``NetnsPair``
makes two network namespaces joined by a veth pair, removed afterwards.

Every address used is loopback or inside namespaces the tests create.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tests.helpers import YGG, YGGDRASIL, YGGDRASIL05, YGGDRASILCTL, YGGDRASILCTL05
from tests.processes import Process

#: What a node runs without a ProtocolVersions key.
BOTH_VERSIONS = ("0.4", "0.5")
LISTENER = re.compile(r"(TCP|TLS|UNIX|WSS|WS|QUIC) listener started on (\S+)")


def short_tempdir(prefix: str) -> str:
    """A directory with a short path: unix socket paths must stay under 108 bytes."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (AssertionError, OSError, ValueError, subprocess.SubprocessError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Node:
    """What both kinds of node share: a directory, a config, a process, yggdrasilctl."""

    binary_name = ""
    ctl_binary = YGGDRASILCTL

    def __init__(
        self,
        directory: str,
        *,
        listen: Iterable[str] = (),
        peers: Iterable[str] = (),
        admin: str | None = None,
        tun: str | None = None,
        mtu: int = 65535,
        multicast: str | None = None,
        multicast_port: int = 0,
        multicast_password: str = "",
        beacon: bool = True,
        listen_beacons: bool = True,
        netns: str | None = None,
        private_key: str | None = None,
        allow: Iterable[str] = (),
        nodeinfo: dict | None = None,
        nodeinfo_privacy: bool = False,
        extra: dict | None = None,
    ) -> None:
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.netns = netns
        self.admin = admin or f"unix://{directory}/admin.sock"
        self.config: dict[str, Any] = {
            "Listen": list(listen),
            "Peers": list(peers),
            "AdminListen": self.admin,
            "IfName": tun or "none",
            "IfMTU": mtu,
            "MulticastInterfaces": (
                [
                    {
                        "Regex": multicast,
                        "Beacon": beacon,
                        "Listen": listen_beacons,
                        "Port": multicast_port,
                        "Priority": 0,
                        **({"Password": multicast_password} if multicast_password else {}),
                    }
                ]
                if multicast
                else []
            ),
            "AllowedPublicKeys": list(allow),
            "NodeInfo": nodeinfo,
            "NodeInfoPrivacy": nodeinfo_privacy,
        }
        if private_key:
            self.config["PrivateKey"] = private_key
            self.config["PublicKey"] = private_key[64:]
        self.config.update(extra or {})
        self.process: Process | None = None
        self.listeners: dict[str, str] = {}

    # -- identity ---------------------------------------------------------------------------

    @property
    def key(self) -> str:
        return self.config["PrivateKey"][64:]

    def address_bytes(self) -> bytes:
        from ygg.address import address_for_key

        return address_for_key(bytes.fromhex(self.key))

    def address_text(self) -> str:
        from ygg.address import format_address

        return format_address(self.address_bytes())

    @property
    def config_path(self) -> str:
        return os.path.join(self.dir, "config.json")

    def write_config(self) -> None:
        Path(self.config_path).write_text(json.dumps(self.config, indent=2))

    # -- running ----------------------------------------------------------------------------

    def argv(self) -> list[str]:
        raise NotImplementedError

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else list(argv)

    def start(self, timeout: float = 30.0) -> Node:
        self.write_config()
        self.process = Process(self.wrap(self.argv()), cwd=self.dir)
        wait_until(
            lambda: self.process.wait_for("Your IPv6 subnet is", timeout=0.1) and True,
            timeout,
            f"{self} to start",
        )
        expected = len(self.config["Listen"])
        wait_until(lambda: len(self._listeners()) >= expected, timeout, f"{self} listeners")
        self.listeners = self._listeners()
        wait_until(lambda: self.ctl("getSelf")["key"] == self.key, timeout, f"{self} admin")
        return self

    def _listeners(self) -> dict[str, str]:
        assert self.process is not None
        self.process._read(0)
        found = {}
        for kind, where in LISTENER.findall(self.process.output):
            found[kind.lower()] = f"{kind.lower()}://{where}"
        return found

    def listen_uri(self, scheme: str) -> str:
        return self.listeners[scheme]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process is None:
            return 0
        code = self.process.stop(sig)
        return code

    @property
    def log(self) -> str:
        if self.process is None:
            return ""
        self.process._read(0)
        return self.process.output

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.dir}>"

    # -- admin ------------------------------------------------------------------------------

    def ctl(self, command: str, *args: str, table: bool = False, timeout: float = 20.0) -> Any:
        """yggdrasilctl against this node: parsed ``-json`` output, or the table text."""
        argv = [self.ctl_binary, "-endpoint", self.admin]
        if not table:
            argv.append("-json")
        done = subprocess.run(
            self.wrap([*argv, command, *args]), capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise AssertionError(
                f"yggdrasilctl {command} {args} failed: {done.stdout}{done.stderr}"
            )
        return done.stdout if table else json.loads(done.stdout)

    def peers(self) -> list[dict[str, Any]]:
        return self.ctl("getPeers")["peers"]

    def peer_keys(self) -> list[str]:
        return [p["key"] for p in self.peers()]

    def wait_peer(self, key: str, timeout: float = 30.0, count: int = 1) -> list[dict]:
        return wait_until(
            lambda: (
                (rows := [p for p in self.peers() if p["key"] == key])
                and len(rows) >= count
                and rows
            ),
            timeout,
            f"{self} to list {key[:16]}… ({count} link(s))",
        )


class GoNode(Node):
    """The reference node: Debian's yggdrasil 0.4.7."""

    def __init__(self, directory: str, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        if "PrivateKey" not in self.config:
            generated = json.loads(
                subprocess.run(
                    [YGGDRASIL, "-genconf", "-json"], capture_output=True, text=True, check=True
                ).stdout
            )
            self.config["PrivateKey"] = generated["PrivateKey"]
            self.config["PublicKey"] = generated["PrivateKey"][64:]

    def argv(self) -> list[str]:
        return [YGGDRASIL, "-useconffile", self.config_path, "-logto", "stdout"]


class GoNode05(Node):
    """The v0.5 judge: Debian's yggdrasil 0.5.12 (its genconf prints no AdminListen: the
    base config sets it; its config keys are a superset of 0.4.7's)."""

    ctl_binary = YGGDRASILCTL05

    def __init__(self, directory: str, *, loglevel: str = "info", **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self.loglevel = loglevel
        if "PrivateKey" not in self.config:
            generated = json.loads(
                subprocess.run(
                    [YGGDRASIL05, "-genconf", "-json"], capture_output=True, text=True, check=True
                ).stdout
            )
            self.config["PrivateKey"] = generated["PrivateKey"]
            self.config["PublicKey"] = generated["PrivateKey"][64:]

    def argv(self) -> list[str]:
        return [
            YGGDRASIL05,
            "-useconffile",
            self.config_path,
            "-logto",
            "stdout",
            "-loglevel",
            self.loglevel,
        ]

    def tree_root(self) -> str:
        """The root of the tree as this node sees it: the key in getTree that is its own
        parent (the one at the top of our ancestry)."""
        tree = {row["key"]: row["parent"] for row in self.ctl("getTree")["tree"]}
        key = self.key
        for _ in range(len(tree) + 1):
            parent = tree.get(key, key)
            if parent == key:
                return key
            key = parent
        raise AssertionError(f"{self}: getTree has a loop: {tree}")


class YggNode(Node):
    """Ours, as a user runs it: ``ygg run --config FILE``.

    ``versions`` is its ProtocolVersions: both by default, as a real node's config (which
    then has no ProtocolVersions key); a v0.4 peer still gets a v0.4 link, and two ygg
    nodes link over v0.5.  ``("0.4",)`` or ``("0.5",)`` make it that version's node.
    """

    def __init__(
        self,
        directory: str,
        *,
        loglevel: str = "info",
        versions: Sequence[str] = BOTH_VERSIONS,
        **kwargs: Any,
    ) -> None:
        super().__init__(directory, **kwargs)
        self.loglevel = loglevel
        if tuple(versions) != BOTH_VERSIONS:
            self.config.setdefault("ProtocolVersions", list(versions))
        if "PrivateKey" not in self.config:
            from ygg.keys import NodeKey

            key = NodeKey.generate()
            self.config["PrivateKey"] = key.private.hex()
            self.config["PublicKey"] = key.public.hex()

    def argv(self) -> list[str]:
        return [YGG, "run", "--config", self.config_path, "--loglevel", self.loglevel]

    def v05_root(self) -> str | None:
        """The v0.5 tree root our node logged last (``--loglevel debug``), or None."""
        found = re.findall(r"v0\.5 tree: root ([0-9a-f]{64})", self.log)
        return found[-1] if found else None


class Netns:
    """Network namespaces made for a test (loopback up, IPv6 on), joined by veth pairs
    with IPv6 ULAs; ``down`` kills what runs in them and removes them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = f"{prefix}{os.getpid() % 100000}-{int(time.time() * 1000) % 100000}"
        self.created: list[str] = []

    def _add(self, ns: str) -> None:
        _run(["ip", "netns", "add", ns])
        self.created.append(ns)
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=0",
            ]
        )

    def _veth(self, one: tuple[str, str, str], other: tuple[str, str, str]) -> None:
        """A veth pair between two namespaces: (namespace, interface, address) each."""
        (ns_a, if_a, _), (ns_b, if_b, _) = one, other
        # Made in place in both namespaces at once: nothing appears in the host's.
        peer = ("peer", "name", if_b, "netns", ns_b)
        _run(["ip", "link", "add", if_a, "netns", ns_a, "type", "veth", *peer])
        for ns, iface, ip in (one, other):
            _run(["ip", "-n", ns, "addr", "add", f"{ip}/64", "dev", iface, "nodad"])
            _run(["ip", "-n", ns, "link", "set", iface, "up"])
        wait_until(
            lambda: self.exec(ns_a, "ping", "-6", "-c1", "-W1", other[2]).returncode == 0,
            15,
            "the veth underlay",
        )

    def link_local(self, ns: str, iface: str = "veth0") -> str | None:
        out = subprocess.run(
            ["ip", "-n", ns, "-6", "-o", "addr", "show", "dev", iface, "scope", "link"],
            capture_output=True,
            text=True,
        ).stdout
        if "tentative" in out:
            return None
        match = re.search(r"inet6 (fe80::[0-9a-f:]+)/", out)
        return match.group(1) if match else None

    def exec(self, ns: str, *argv: str, **kwargs: Any) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, **kwargs
        )

    def down(self) -> None:
        for ns in self.created:
            pids = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True
            ).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created = []


class NetnsPair(Netns):
    """Two network namespaces joined by a veth pair (``veth0`` in each), IPv6 ULAs."""

    IP_A = "fd59:6767::1"
    IP_B = "fd59:6767::2"
    IFACE = "veth0"

    def __init__(self, prefix: str = "yggt") -> None:
        super().__init__(prefix)
        self.a = f"{self.prefix}a"
        self.b = f"{self.prefix}b"

    def up(self) -> NetnsPair:
        try:
            for ns in (self.a, self.b):
                self._add(ns)
            self._veth((self.a, self.IFACE, self.IP_A), (self.b, self.IFACE, self.IP_B))
            # Link-local addresses (multicast discovery needs them) come up a moment later.
            wait_until(
                lambda: self.link_local(self.a) and self.link_local(self.b),
                15,
                "link-local addresses",
            )
        except BaseException:
            self.down()
            raise
        return self


class NetnsStar(Netns):
    """A namespace in the middle joined to each of ``leaves`` others by its own veth pair:
    ``veth<i>`` (``fd59:6768:<i>::1``) in the middle to ``veth0`` (``…::2``) in leaf i."""

    def __init__(self, prefix: str = "ygst", leaves: int = 2) -> None:
        super().__init__(prefix)
        self.middle = f"{self.prefix}m"
        self.leaves = [f"{self.prefix}{i}" for i in range(leaves)]

    @staticmethod
    def middle_ip(i: int) -> str:
        return f"fd59:6768:{i + 1}::1"

    @staticmethod
    def leaf_ip(i: int) -> str:
        return f"fd59:6768:{i + 1}::2"

    def up(self) -> NetnsStar:
        try:
            for ns in (self.middle, *self.leaves):
                self._add(ns)
            for i, leaf in enumerate(self.leaves):
                self._veth(
                    (self.middle, f"veth{i}", self.middle_ip(i)),
                    (leaf, "veth0", self.leaf_ip(i)),
                )
        except BaseException:
            self.down()
            raise
        return self


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
