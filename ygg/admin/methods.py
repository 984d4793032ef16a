"""The node's admin methods, each a function of the node returning plain data.

A node running v0.4 only answers as yggdrasil 0.4.7 does (spec §6.3), one running v0.5
only as 0.5.12 does (spec-v05 §7.6), one running both with the union of the two
(``ygg.admin.forms``; the table is in docs/admin.md).  Replies have the same keys, order,
sorting and values as the Go node's: lists sorted by key, empty lists ``[]``, uptimes as
float seconds, byte counters as integers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.internet.defer import fail
from twisted.python.failure import Failure

from ygg import BUILD_NAME, __version__
from ygg import address as addr
from ygg.admin import forms
from ygg.admin.forms import BOTH, V04, V05, node_form, reply_form
from ygg.admin.peers import get_peers
from ygg.admin.registry import NO_REQUEST, AdminError, Arg, Method, Registry
from ygg.admin.tables import without_query
from ygg.errors import YggError
from ygg.links.uri import URLParseError
from ygg.reload import ReloadError


def _ip(key: bytes) -> str:
    return addr.format_address(addr.address_for_key(key))


def _router05(node: Any) -> Any:
    """The v0.5 router, or None (v0.5 off)."""
    return getattr(node, "router05", None)


def get_self(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    form = reply_form(node, args)
    reply: dict[str, Any] = {
        "build_name": BUILD_NAME,
        "build_version": __version__,
        "key": node.public_key.hex(),
        "address": addr.format_address(node.address),
    }
    if form != V05:
        reply["coords"] = list(node.router.get_self().coords)
    if form != V04:
        router = _router05(node)
        reply["routing_entries"] = router.get_self().routing_entries if router else 0
    reply["subnet"] = addr.format_subnet(node.subnet)
    return reply


def get_dht(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {"address": _ip(d.key), "key": d.key.hex(), "port": d.port, "rest": d.rest}
        for d in node.router.get_dht()
    ]
    return {"dht": sorted(rows, key=lambda r: r["key"])}


def get_tree(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    router = _router05(node)
    rows = [
        {
            "address": _ip(t.key),
            "key": t.key.hex(),
            "parent": t.parent.hex(),
            "sequence": t.sequence,
        }
        for t in (router.get_tree() if router is not None else ())
    ]
    return {"tree": sorted(rows, key=lambda r: r["key"])}


def get_paths(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    form = reply_form(node, args)
    networks = []
    if form != V05:
        networks.append((V04, node.router))
    if form != V04:
        networks.append((V05, _router05(node)))
    rows = []
    for version, router in networks:
        for p in router.get_paths() if router is not None else ():
            row = {"address": _ip(p.key), "key": p.key.hex(), "path": list(p.path)}
            if version == V05:
                row["sequence"] = p.sequence
            if form == BOTH:
                row["version"] = version
            rows.append(row)
    return {"paths": sorted(rows, key=_by_key)}


def get_sessions(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    form = reply_form(node, args)
    cores = []
    if form != V05:
        cores.append((V04, node.core))
    if form != V04:
        cores.append((V05, getattr(node, "core05", None)))
    rows = []
    for version, core in cores:
        for s in core.sessions.sessions() if core is not None else ():
            row = {
                "address": _ip(s.key),
                "key": s.key.hex(),
                "bytes_recvd": s.rx,
                "bytes_sent": s.tx,
                "uptime": s.uptime,
            }
            if form == BOTH:
                row["version"] = version
            rows.append(row)
    return {"sessions": sorted(rows, key=_by_key)}


def _by_key(row: dict[str, Any]) -> tuple[str, str]:
    return row["key"], row.get("version", "")


def add_peer(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    uri, interface = args.get("uri", ""), args.get("interface", "")
    v05 = node_form(node) != V04
    if v05 and _configured_as(node, uri, interface) is not None:
        raise AdminError("peer is already configured")
    try:
        node.links.add_peer(uri, interface)
    except YggError as e:
        raise AdminError(_link_error(e, v05)) from None
    _remember(node, uri, interface, added=True)
    return {}


def remove_peer(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    uri, interface = args.get("uri", ""), args.get("interface", "")
    v05 = node_form(node) != V04
    if v05:
        # 0.5.12 knows a peer by its URI less the query: removing tcp://h:1 removes
        # tcp://h:1?priority=3.
        uri = _configured_as(node, uri, interface) or uri
    try:
        node.links.remove_peer(uri, interface)
    except YggError as e:
        raise AdminError(_link_error(e, v05)) from None
    _remember(node, uri, interface, added=False)
    return {}


def _remember(node: Any, uri: str, interface: str, added: bool) -> None:
    """Keep the change across restarts (ygg.runtimestate), on a node that keeps any."""
    remember = getattr(node, "remember_peer", None)
    if remember is not None:
        remember(uri, interface, added)


def _configured_as(node: Any, uri: str, interface: str) -> str | None:
    """The configured peer 0.5.12 takes ``uri`` for (same URI less its query), if any."""
    wanted = without_query(uri)
    for text, where in getattr(node.links, "persistent", {}):
        if where == interface and without_query(text) == wanted:
            return text
    return None


#: 0.4.7's texts of addPeer/removePeer errors -> 0.5.12's (by their start).
_LINK_ERRORS_05 = (
    ("peer already configured", "peer is already configured"),
    ("peer not configured", "peer is not configured"),
    ("pinned key contains invalid hex characters", "pinned public key is invalid"),
    ("priority invalid", "priority value is invalid"),
)


def _link_error(error: YggError, v05: bool) -> str:
    """The text the Go node of the node's version gives for this error."""
    text = str(error)
    if not v05:
        return text
    if isinstance(error, URLParseError):
        return f"unable to parse peering URI: {text}"
    for old, new in _LINK_ERRORS_05:
        if text.startswith(old):
            return new
    return text


def get_multicast_interfaces(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    multicast = getattr(node, "multicast", None)
    if reply_form(node, args) == V04:
        names = sorted(multicast.interface_names()) if multicast is not None else []
        return {"multicast_interfaces": names}
    rows = []
    for name, chosen in sorted(getattr(multicast, "selected", {}).items()):
        listener = getattr(multicast, "listeners", {}).get(name)
        port = getattr(listener, "port", None)
        address = "-"
        if port is not None and chosen.address:
            address = f"[{chosen.address}%{name}]:{port.getHost().port}"
        entry = chosen.entry
        rows.append(
            {
                "name": name,
                "address": address,
                "beacon": entry.beacon,
                "listen": entry.listen,
                "password": bool(entry.password),
            }
        )
    return {"multicast_interfaces": rows}


def get_tun(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    tun = getattr(node, "tun", None)
    if tun is None or not tun.enabled:
        return {"enabled": False}
    return {"enabled": True, "name": tun.name, "mtu": tun.mtu}


def go_hex_decode(text: str) -> bytes:
    """hex.DecodeString with Go's error texts (``encoding/hex: invalid byte: U+007A 'z'``)."""
    data = text.encode("utf-8", "surrogateescape")
    for byte in data:  # Go reports the first bad byte before an odd length
        if chr(byte) not in "0123456789abcdefABCDEF":
            char = chr(byte)
            shown = f"U+{byte:04X} '{char}'" if char.isprintable() else f"U+{byte:04X}"
            raise ValueError(f"encoding/hex: invalid byte: {shown}")
    if len(data) % 2:
        raise ValueError("encoding/hex: odd length hex string")
    return bytes.fromhex(data.decode())


def _remote_key(args: dict[str, Any], prefix: str = "") -> tuple[bytes, bytes]:
    """The key argument as Go reads it: hex of any length, copied into 32 zero bytes."""
    text = args.get("key", "")
    try:
        raw = go_hex_decode(text)
    except ValueError as e:
        raise AdminError(f"{prefix}{e}") from None
    return raw, raw[:32].ljust(32, b"\0")


def _debug_key(node: Any, args: dict[str, Any]) -> bytes:
    """The key of a debug_remote* request: any length on a v0.4 node (0.4.7 pads it),
    exactly 32 bytes once v0.5 runs (0.5.12 refuses the rest)."""
    raw, key = _remote_key(args)
    if node_form(node) != V04 and len(raw) != 32:
        raise AdminError("invalid public key length")
    return key


def get_node_info(node: Any, args: dict[str, Any]) -> Any:
    if not args.get("key"):
        raise AdminError("No remote public key supplied")
    raw, key = _remote_key(args, "Failed to decode public key: ")
    return node.get_node_info(key).addCallback(lambda info: {raw.hex(): info})


def debug_remote_get_self(node: Any, args: dict[str, Any]) -> Any:
    key = _debug_key(node, args)
    return node.remote_get_self(key).addCallback(lambda reply: {_ip(key): reply})


def debug_remote_get_peers(node: Any, args: dict[str, Any]) -> Any:
    key = _debug_key(node, args)
    return node.remote_get_peers(key).addCallback(lambda keys: {_ip(key): _keys(keys)})


def debug_remote_get_dht(node: Any, args: dict[str, Any]) -> Any:
    _, key = _remote_key(args)
    return node.remote_get_dht(key).addCallback(lambda keys: {_ip(key): _keys(keys)})


def debug_remote_get_tree(node: Any, args: dict[str, Any]) -> Any:
    key = _debug_key(node, args)
    ask = getattr(node, "remote_get_tree", None)
    if ask is None:  # the node's facade has none yet: ask v0.5's proto handler
        ask = getattr(getattr(node, "proto05", None), "remote_get_tree", None)
    if ask is None:
        return fail(AdminError("timeout"))  # what 0.5.12 says when no answer comes
    return ask(key).addCallback(lambda keys: {_ip(key): _keys(keys)})


def _keys(keys: list[bytes] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(keys, dict):
        return keys  # already as the admin API shows it
    # Go leaves the "keys" member out when the reply held none.
    return {"keys": [k.hex() for k in keys]} if keys else {}


def reload_config(node: Any, args: dict[str, Any]) -> Any:
    def failed(failure: Failure) -> None:
        failure.trap(ReloadError)
        raise AdminError(str(failure.value))

    return node.reload().addCallbacks(lambda line: {"reload": line}, failed)


def get_runtime_state(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    return node.runtime.describe()


def clear_runtime_state(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"cleared": node.clear_runtime_state().to_data()}


def list_methods(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"list": node.admin.list_entries(node)}


URI_ARGS = (
    Arg("uri", help="peer URI, e.g. tls://host:port"),
    Arg("interface", help="source interface (optional)"),
)

KEY_ARGS = (Arg("key", help="the remote node's public key, in hex"),)

#: The methods every node has, the same everywhere.
COMMON = (
    Method("list", "List available commands", list_methods, go_request=NO_REQUEST),
    Method("addPeer", "Add a peer to the peer list", add_peer, URI_ARGS),
    Method("removePeer", "Remove a peer from the peer list", remove_peer, URI_ARGS),
    Method(
        "getTUN",
        "Show information about the node's TUN interface",
        get_tun,
        go_request="tun.GetTUNRequest",
    ),
    Method(
        "getNodeInfo",
        "Request nodeinfo from a remote node by its public key",
        get_node_info,
        KEY_ARGS,
        go_request="core.GetNodeInfoRequest",
    ),
    Method(
        "debug_remoteGetSelf",
        "Debug use only",
        debug_remote_get_self,
        KEY_ARGS,
        go_request="core.DebugGetSelfRequest",
    ),
    Method(
        "debug_remoteGetPeers",
        "Debug use only",
        debug_remote_get_peers,
        KEY_ARGS,
        go_request="core.DebugGetPeersRequest",
    ),
)

#: The methods whose reply differs between the versions: on a node running both they
#: take ``version=0.4|0.5`` (``ygg.admin.forms``).
CHOOSING = (
    Method("getSelf", "Show details about this node", get_self),
    Method("getPeers", "Show directly connected peers", get_peers, table="peers"),
    Method("getPaths", "Show established paths through this node", get_paths, table="paths"),
    Method(
        "getSessions",
        "Show established traffic sessions with remote nodes",
        get_sessions,
        table="sessions",
    ),
    Method(
        "getMulticastInterfaces",
        "Show which interfaces multicast is enabled on",
        get_multicast_interfaces,
        go_request="multicast.GetMulticastInterfacesRequest",
        table="multicast_interfaces",
    ),
)

#: ygg's own methods, of a node with a config (``ygg.service.Node``): answered on every
#: door, but left out of ``list``, which stays the Go node's (docs/user-guide.md).
UNLISTED = (
    Method(
        "reload",
        "Read the config file again and apply what changed",
        reload_config,
        help="Peers, Listen, MulticastInterfaces, AllowedPublicKeys, NodeInfo and the\n"
        "features' sections change live; the key, IfName and the rest are refused.",
    ),
    Method(
        "getRuntimeState",
        "Show the peers added and removed at runtime, kept across restarts",
        get_runtime_state,
    ),
    Method(
        "clearRuntimeState",
        "Forget the runtime peer changes and run the config file's peers again",
        clear_runtime_state,
    ),
)

#: The methods of one version, on the nodes that run it.
OWN = (
    (
        forms.WITH_04,
        Method("getDHT", "Show known DHT entries", get_dht, table="dht"),
    ),
    (
        forms.WITH_04,
        Method(
            "debug_remoteGetDHT",
            "Debug use only",
            debug_remote_get_dht,
            KEY_ARGS,
            go_request="core.DebugGetDHTRequest",
        ),
    ),
    (
        forms.WITH_05,
        Method("getTree", "Show known Tree entries", get_tree, table="tree"),
    ),
    (
        forms.WITH_05,
        Method(
            "debug_remoteGetTree",
            "Debug use only",
            debug_remote_get_tree,
            KEY_ARGS,
            go_request="core.DebugGetTreeRequest",
        ),
    ),
)


def builtin_registry() -> Registry:
    """The node's own methods; which of them a node has, and in which form, depends on
    the protocol versions it runs (``Registry.lookup`` picks)."""
    registry = Registry()
    for method in COMMON:
        registry.register(method)
    for method in CHOOSING:
        registry.register(method, gate=forms.ONE_VERSION)
        choosing = dataclasses.replace(method, args=(*method.args, forms.VERSION_ARG))
        registry.register(choosing, gate=forms.TWO_VERSIONS)
    for gate, method in OWN:
        registry.register(method, gate=gate)
    for method in UNLISTED:
        registry.register(method, listed=False)
    return registry
