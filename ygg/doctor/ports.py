"""The listening checks of ``ygg doctor``: the admin socket's directory (or port), the ports
of ``Listen``, the AMP and SSH admin doors, multicast (its interfaces, port and beacons'
UDP port) and meshname's DNS port: free, or who holds them.

Each is a small function of a host reader (``ygg.doctor.host.Host``, or a test's fake) and
the node's config (None: the defaults of ``ygg run --autoconf``), returning ``Check``
lines.  A port is tried by binding a socket and closing it at once, as the node would bind
it; a node already running with this admin socket is told apart from a stranger.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from typing import Any

from ygg.config import DEFAULT_ADMIN_LISTEN, MulticastInterface, NodeConfig, parse_host_port
from ygg.doctor.check import FAIL, OK, SKIP, WARN, Check
from ygg.doctor.host import errno_name
from ygg.links.netutil import join_host_port

#: Where multicast beacons are sent and heard (ff02::114 port 9001).
MULTICAST_PORT = 9001


def _listen_setting(cfg: NodeConfig | None) -> str:
    return DEFAULT_ADMIN_LISTEN if cfg is None else cfg.admin_listen


def port(
    host: Any,
    kind: str,
    where: str,
    number: int,
    what: str,
    running: Iterable[str] = (),
    *,
    setting: str = "",
    reuse: bool | None = None,
) -> Check:
    """Whether the node could listen on ``kind`` ``where``:``number``; ``what`` says whose
    port it is, ``setting`` the key to change (``what`` by default).  ``running`` holds the
    processes of a node found running (its admin socket answers), whose own ports are no
    surprise."""
    setting = setting or what
    shown = f"{kind} {join_host_port(where.strip('[]') or '::', number)}"
    error = host.bind_error(kind, where, number, reuse=reuse)
    if error is None:
        return Check("port", OK, f"{shown} ({what}) is free")
    code = errno_name(error)
    if code == "EADDRINUSE":
        owners = host.port_owners(kind, number)
        if owners and set(owners) <= set(running):
            return Check(
                "port",
                WARN,
                f"{shown} ({what}) is held by the node running now ({', '.join(owners)})",
                "fine if that node is this one: another cannot listen there too",
            )
        by = f" by {', '.join(owners)}" if owners else ""
        return Check(
            "port",
            FAIL,
            f"{shown} ({what}) is in use{by}",
            f"stop {'that process' if owners else 'what holds it'}, or choose another port "
            f"in {setting}",
        )
    if code == "EADDRNOTAVAIL":
        return Check(
            "port",
            FAIL,
            f"{shown} ({what}): this host has no such address",
            f"use one of this host's addresses in {setting}, or [::] for all of them",
        )
    if code == "EACCES":
        return Check(
            "port",
            FAIL,
            f"{shown} ({what}): a port below 1024 needs root or CAP_NET_BIND_SERVICE",
            f"run the node as root, or choose a port from 1024 up in {setting}",
        )
    return Check("port", FAIL, f"{shown} ({what}): {error.strerror or error}", f"check {setting}")


def listeners(host: Any, cfg: NodeConfig | None, running: Iterable[str] = ()) -> list[Check]:
    """Each ``Listen`` URI with a fixed port: free, or who holds it."""
    from ygg.links.uri import LinkURIError, parse_listen_uri
    from ygg.links.versions import V05

    if cfg is None:
        return []
    found = []
    for i, text in enumerate(cfg.listen):
        what = f"Listen[{i}] {text}"
        try:
            uri = parse_listen_uri(text)
        except LinkURIError as e:
            found.append(
                Check(
                    "Listen",
                    FAIL,
                    f"{what}: {e}; the node ignores it",
                    "correct it: tcp://, tls://, ws://, wss://, quic:// with [host]:port, "
                    "or unix:///path",
                )
            )
            continue
        if uri.scheme == "quic" and V05 not in cfg.protocol_versions:
            found.append(
                Check(
                    "Listen",
                    FAIL,
                    f"{what}: quic is v0.5 only and ProtocolVersions has no 0.5",
                    'add "0.5" to ProtocolVersions, or listen on tls:// instead',
                )
            )
            continue
        if uri.scheme == "unix":
            found.append(_unix_listener(host, uri.path, what))
        elif uri.port:
            kind = "udp" if uri.scheme == "quic" else "tcp"
            where = f"[{uri.host}%{uri.zone}]" if uri.zone else uri.host
            found.append(port(host, kind, where, uri.port, what, running, setting="Listen"))
    return found


def _unix_listener(host: Any, path: str, what: str) -> Check:
    directory = os.path.dirname(path) or "."
    if host.stat(path) is not None:
        return Check(
            "port",
            FAIL,
            f"{what}: {path} exists; the node does not replace it (as Go's does not)",
            f"remove {path} if nothing uses it, or choose another path",
        )
    if not host.access(directory, os.W_OK | os.X_OK):
        return Check(
            "port",
            FAIL,
            f"{what}: cannot create a socket in {directory}",
            f"run the node as root, or make {directory} writable for it",
        )
    return Check("port", OK, f"unix {path} ({what}) can be created")


def admin_endpoints(host: Any, cfg: NodeConfig | None, running: Iterable[str] = ()) -> list[Check]:
    """The AMP and SSH admin doors' TCP ports (Twisted endpoint strings)."""
    if cfg is None:
        return []
    found = []
    for what, text in (
        ("AdminAMP.Listen", cfg.admin_amp.listen),
        ("AdminShell.Listen", cfg.admin_shell.listen),
    ):
        if not text:
            continue
        parsed = endpoint_port(text)
        if parsed is None:
            found.append(Check("port", SKIP, f"{what} {text}: not a tcp endpoint; not checked"))
        elif parsed[1]:
            found.append(port(host, "tcp", parsed[0], parsed[1], what, running))
    return found


def endpoint_port(text: str) -> tuple[str, int] | None:
    """(interface, port) of a Twisted ``tcp:``/``tcp6:``/``ssl:`` server endpoint string
    (``tcp:9002:interface=\\:\\:1``), or None for another kind."""
    parts = [p.replace("\\:", ":") for p in re.split(r"(?<!\\):", text)]
    if parts[0].lower() not in ("tcp", "tcp6", "ssl") or len(parts) < 2:
        return None
    named = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    positional = [p for p in parts[1:] if "=" not in p]
    number = named.get("port") or (positional[0] if positional else "")
    if not number.isdigit():
        return None
    default = "::" if parts[0].lower() == "tcp6" else "0.0.0.0"
    return named.get("interface", default), int(number)


# --------------------------------------------------------------------------- admin socket


def running_node(host: Any, cfg: NodeConfig | None) -> list[str]:
    """The processes of a node already running with this admin socket (it answers)."""
    listen = _listen_setting(cfg)
    if not listen.lower().startswith("unix://"):
        return []
    path = listen[len("unix://") :]
    if host.stat(path) is None or not host.unix_socket_answers(path):
        return []
    return host.unix_owners(path) or ["a process"]


def admin_socket(host: Any, cfg: NodeConfig | None, running: Sequence[str] = ()) -> list[Check]:
    listen = _listen_setting(cfg)
    name = "admin socket"
    if listen in ("none", ""):
        return [Check(name, SKIP, "AdminListen is none")]
    if not listen.lower().startswith("unix://"):
        hostport = listen[len("tcp://") :] if listen.lower().startswith("tcp://") else listen
        where, _, number = hostport.rpartition(":")
        if not number.isdigit():
            return [Check(name, FAIL, f"AdminListen {listen}: no port", "give tcp://host:port")]
        where = "127.0.0.1" if where == "localhost" else where
        return [port(host, "tcp", where, int(number), "AdminListen", running)]
    path = listen[len("unix://") :]
    directory = os.path.dirname(path) or "."
    uid = host.euid()
    found = host.stat(path)
    if found is not None:
        if running:
            return [
                Check(
                    name,
                    WARN,
                    f"{path} answers: a node runs with it ({', '.join(running)})",
                    "fine if that node is this one; another with this AdminListen cannot "
                    "start: stop that one, or choose another AdminListen",
                )
            ]
        if not _is_socket(found):
            return [
                Check(
                    name,
                    WARN,
                    f"{path} exists and is not a socket: the node deletes it at start",
                    f"move {path} away, or choose another AdminListen",
                )
            ]
        return [Check(name, OK, f"{path}: a stale socket nobody answers on; the node replaces it")]
    parent = host.stat(directory)
    if parent is None:
        ancestor = _existing_ancestor(host, directory)
        if host.access(ancestor, os.W_OK | os.X_OK):
            return [
                Check(
                    name,
                    WARN,
                    f"{directory} does not exist; the node creates it at start",
                    f"mkdir -p {directory} (a tmpfs such as /run is empty after a reboot: "
                    "systemd's RuntimeDirectory= makes it each time)",
                )
            ]
        return [
            Check(
                name,
                FAIL,
                f"{directory} does not exist and uid {uid} cannot create it ({ancestor} is "
                "not writable): the node cannot start",
                f"as root: mkdir -p {directory} && chown <the node's user> {directory}; or "
                "run the node as root, or choose another AdminListen",
            )
        ]
    if not _is_dir(parent):
        return [
            Check(
                name,
                FAIL,
                f"{directory} is not a directory: the node cannot start",
                f"choose another AdminListen, or move {directory} away",
            )
        ]
    if not host.access(directory, os.W_OK | os.X_OK):
        return [
            Check(
                name,
                FAIL,
                f"uid {uid} cannot create {path}: {directory} is not writable "
                f"(owner uid {parent.st_uid}, mode {parent.st_mode & 0o7777:04o}); the node "
                "cannot start",
                f"run the node as root, or chown <the node's user> {directory}, or choose "
                "another AdminListen",
            )
        ]
    return [Check(name, OK, f"{path} can be created ({directory} is writable)")]


def _existing_ancestor(host: Any, directory: str) -> str:
    while directory not in ("/", "") and host.stat(directory) is None:
        directory = os.path.dirname(directory)
    return directory or "/"


def _is_socket(result: os.stat_result) -> bool:
    return stat.S_ISSOCK(result.st_mode)


def _is_dir(result: os.stat_result) -> bool:
    return stat.S_ISDIR(result.st_mode)


# --------------------------------------------------------------------------- multicast


def multicast(host: Any, cfg: NodeConfig | None, running: Iterable[str] = ()) -> list[Check]:
    configured = (NodeConfig() if cfg is None else cfg).multicast_interfaces
    entries = [e for e in configured if e.beacon or e.listen]
    if not entries:
        return [Check("multicast", SKIP, "MulticastInterfaces is empty: no multicast")]
    try:
        found = host.interfaces()
    except OSError as e:
        return [Check("multicast", WARN, f"cannot list the interfaces: {e.strerror or e}")]
    claimed: set[str] = set()
    checks = []
    usable_any = False
    for i, entry in enumerate(entries):
        pattern = re.compile(entry.regex)
        usable, unusable = [], []
        for interface in found:
            if interface.name in claimed or not pattern.search(interface.name):
                continue
            why = _unusable(interface)
            if why:
                unusable.append(f"{interface.name} ({why})")
            else:
                claimed.add(interface.name)
                usable.append(interface)
        what = f"MulticastInterfaces[{i}] Regex {entry.regex!r}"
        if usable:
            usable_any = True
            names = ", ".join(i.name for i in usable)
            checks.append(Check("multicast", OK, f"{what}: {names} ({_roles(entry)})"))
            if entry.port and entry.beacon:
                for interface in usable:
                    where = f"[{interface.link_local}%{interface.name}]"
                    setting = f"MulticastInterfaces[{i}].Port"
                    checks.append(port(host, "tcp", where, entry.port, setting, running))
            continue
        names = ", ".join(unusable) or "none"
        checks.append(
            Check(
                "multicast",
                WARN,
                f"{what} matches no interface that can multicast; matched: {names}",
                "name an interface that is up, multicast-capable and has an IPv6 link-local "
                f"address; this host has: {', '.join(i.name for i in found) or 'none'}",
            )
        )
    if usable_any:
        beacons = port(host, "udp", "::", MULTICAST_PORT, "multicast beacons", running, reuse=True)
        if beacons.status != OK:
            checks.append(beacons)
    return checks


def _unusable(interface: Any) -> str:
    if not interface.up:
        return "down"
    if not interface.multicast:
        return "no multicast"
    if interface.point_to_point:
        return "point-to-point"
    if interface.link_local is None:
        return "no IPv6 link-local address"
    return ""


def _roles(entry: MulticastInterface) -> str:
    roles = [r for r, on in (("beacon", entry.beacon), ("listen", entry.listen)) if on]
    return " and ".join(roles)


# --------------------------------------------------------------------------- meshname


def meshname(host: Any, cfg: NodeConfig | None, running: Iterable[str] = ()) -> list[Check]:
    """Meshname's DNS port (UDP and TCP), when the feature is installed and enabled."""
    from ygg import features
    from ygg.errors import ConfigError

    feature = next((f for f in features.discover().features if f.name == "meshname"), None)
    if feature is None:
        return [Check("meshname", SKIP, "the meshname feature is not installed")]
    if cfg is None:
        return [Check("meshname", SKIP, "no config: meshname is off by default")]
    try:
        section = features.feature_config(feature, cfg)
    except ConfigError:
        return []  # the config check reports it
    if not features.is_enabled(section):
        return [Check("meshname", SKIP, f"{feature.section}.Enable is false")]
    what = f"{feature.section}.Listen"
    try:
        where, number = parse_host_port(section.listen, what)
    except ConfigError:
        return []  # the config check reports it
    return [port(host, kind, where, number, what, running) for kind in ("udp", "tcp")]
