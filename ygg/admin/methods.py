"""yggdrasil 0.4.7's admin methods, each a function of the node returning plain data.

Replies have the same keys, order, sorting and values as the Go node's (spec §6.3):
lists sorted by key (getPeers by port, then priority), empty lists ``[]``, uptimes as
float seconds, byte counters as integers.
"""

from __future__ import annotations

from typing import Any

from ygg import BUILD_NAME, __version__
from ygg import address as addr
from ygg.admin.registry import AdminError, Arg, Method, Registry
from ygg.errors import YggError


def _ip(key: bytes) -> str:
    return addr.format_address(addr.address_for_key(key))


def get_self(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    me = node.router.get_self()
    return {
        "build_name": BUILD_NAME,
        "build_version": __version__,
        "key": node.public_key.hex(),
        "address": addr.format_address(node.address),
        "coords": list(me.coords),
        "subnet": addr.format_subnet(node.subnet),
    }


def get_peers(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    peers = []
    for info in node.router.get_peers():
        link = info.link.stats()
        peers.append(
            {
                "address": _ip(info.key),
                "key": info.key.hex(),
                "port": info.port,
                "priority": info.priority,
                "coords": list(info.coords),
                "remote": link.remote,
                "bytes_recvd": link.bytes_recvd,
                "bytes_sent": link.bytes_sent,
                "uptime": link.uptime,
            }
        )
    peers.sort(key=lambda p: (p["port"], p["priority"]))
    return {"peers": peers}


def get_dht(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {"address": _ip(d.key), "key": d.key.hex(), "port": d.port, "rest": d.rest}
        for d in node.router.get_dht()
    ]
    return {"dht": sorted(rows, key=lambda r: r["key"])}


def get_paths(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {"address": _ip(p.key), "key": p.key.hex(), "path": list(p.path)}
        for p in node.router.get_paths()
    ]
    return {"paths": sorted(rows, key=lambda r: r["key"])}


def get_sessions(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {
            "address": _ip(s.key),
            "key": s.key.hex(),
            "bytes_recvd": s.rx,
            "bytes_sent": s.tx,
            "uptime": s.uptime,
        }
        for s in node.core.sessions.sessions()
    ]
    return {"sessions": sorted(rows, key=lambda r: r["key"])}


def add_peer(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    try:
        node.links.add_peer(args.get("uri", ""), args.get("interface", ""))
    except YggError as e:
        raise AdminError(str(e)) from None
    return {}


def remove_peer(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    try:
        node.links.remove_peer(args.get("uri", ""), args.get("interface", ""))
    except YggError as e:
        raise AdminError(str(e)) from None
    return {}


def get_multicast_interfaces(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    multicast = getattr(node, "multicast", None)
    names = sorted(multicast.interface_names()) if multicast is not None else []
    return {"multicast_interfaces": names}


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


def get_node_info(node: Any, args: dict[str, Any]) -> Any:
    if not args.get("key"):
        raise AdminError("No remote public key supplied")
    raw, key = _remote_key(args, "Failed to decode public key: ")
    return node.get_node_info(key).addCallback(lambda info: {raw.hex(): info})


def debug_remote_get_self(node: Any, args: dict[str, Any]) -> Any:
    _, key = _remote_key(args)
    return node.remote_get_self(key).addCallback(lambda reply: {_ip(key): reply})


def debug_remote_get_peers(node: Any, args: dict[str, Any]) -> Any:
    _, key = _remote_key(args)
    return node.remote_get_peers(key).addCallback(lambda keys: {_ip(key): _keys(keys)})


def debug_remote_get_dht(node: Any, args: dict[str, Any]) -> Any:
    _, key = _remote_key(args)
    return node.remote_get_dht(key).addCallback(lambda keys: {_ip(key): _keys(keys)})


def _keys(keys: list[bytes]) -> dict[str, Any]:
    # Go leaves the "keys" member out when the reply held none.
    return {"keys": [k.hex() for k in keys]} if keys else {}


def list_methods(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"list": node.admin.list_entries()}


URI_ARGS = (
    Arg("uri", help="peer URI, e.g. tls://host:port"),
    Arg("interface", help="source interface (optional)"),
)

KEY_ARGS = (Arg("key", help="the remote node's public key, in hex"),)

BUILTIN = (
    Method("list", "List available commands", list_methods),
    Method("getSelf", "Show details about this node", get_self),
    Method("getPeers", "Show directly connected peers", get_peers, table="peers"),
    Method("getDHT", "Show known DHT entries", get_dht, table="dht"),
    Method("getPaths", "Show established paths through this node", get_paths, table="paths"),
    Method(
        "getSessions",
        "Show established traffic sessions with remote nodes",
        get_sessions,
        table="sessions",
    ),
    Method("addPeer", "Add a peer to the peer list", add_peer, URI_ARGS),
    Method("removePeer", "Remove a peer from the peer list", remove_peer, URI_ARGS),
    Method(
        "getMulticastInterfaces",
        "Show which interfaces multicast is enabled on",
        get_multicast_interfaces,
    ),
    Method("getTUN", "Show information about the node's TUN interface", get_tun),
    Method(
        "getNodeInfo",
        "Request nodeinfo from a remote node by its public key",
        get_node_info,
        KEY_ARGS,
    ),
    Method(
        "debug_remoteGetSelf",
        "Debug use only",
        debug_remote_get_self,
        KEY_ARGS,
        go_request="DebugGetSelfRequest",
    ),
    Method(
        "debug_remoteGetPeers",
        "Debug use only",
        debug_remote_get_peers,
        KEY_ARGS,
        go_request="DebugGetPeersRequest",
    ),
    Method(
        "debug_remoteGetDHT",
        "Debug use only",
        debug_remote_get_dht,
        KEY_ARGS,
        go_request="DebugGetDHTRequest",
    ),
)


def builtin_registry() -> Registry:
    registry = Registry()
    for method in BUILTIN:
        registry.register(method)
    return registry
