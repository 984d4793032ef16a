"""getPeers in its three forms (``ygg.admin.forms``).

0.4.7's: the v0.4 links that are up, ``{address, key, port, priority, coords, remote,
bytes_recvd, bytes_sent, uptime}`` sorted by port, then priority.

0.5.12's: every link that is up, and every configured peer that is not (``up`` false,
with the last error of its dials), ``{remote, up, inbound, address, key, port, priority,
cost, bytes_recvd, bytes_sent, rate_recvd, rate_sent, uptime, latency, last_error_time,
last_error}`` with Go's ``omitempty`` (``up``, ``inbound``, ``key``, ``port``,
``priority`` and ``cost`` always there), ``latency`` and ``last_error_time`` in
nanoseconds, ``remote`` without its query; sorted outbound first, then by key, priority,
cost and uptime, as 0.5.12 sorts them.

Both (a node running both versions): 0.5.12's rows for the links of both versions, a v0.4
link with its ``coords`` too (0.4.7's getPeers has them) and a cost of 0, every up link
with the ``version`` it speaks.  0.4.7's yggdrasilctl reads a member 0.5.12 leaves out
(bytes, uptime) as zero, which is what it is.
"""

from __future__ import annotations

import functools
from typing import Any

from ygg import address as addr
from ygg.admin.forms import BOTH, V04, V05, reply_form
from ygg.admin.tables import without_query


def _ip(key: bytes) -> str:
    return addr.format_address(addr.address_for_key(key))


def get_peers(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    form = reply_form(node, args)
    if form == V04:
        return {"peers": peers04(node)}
    rows = [_link_row(node, info, V05, form) for info in _router05_peers(node)]
    if form == BOTH:
        rows += [_link_row(node, info, V04, form) for info in node.router.get_peers()]
    rows += down_peers(node)
    rows.sort(key=functools.cmp_to_key(_go_order))
    return {"peers": rows}


def peers04(node: Any) -> list[dict[str, Any]]:
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
    return peers


def _router05_peers(node: Any) -> list[Any]:
    router = getattr(node, "router05", None)
    return router.get_peers() if router is not None else []


def _link_row(node: Any, info: Any, version: str, form: str) -> dict[str, Any]:
    """0.5.12's row of a link that is up (of either version)."""
    link = info.link.stats()
    latency = getattr(info, "latency", None)
    row = entry05(
        remote=link.remote if version == V04 else without_query(link.remote),
        up=True,
        inbound=link.inbound,
        key=info.key,
        port=info.port,
        priority=info.priority,
        cost=getattr(info, "cost", 0),
        bytes_recvd=link.bytes_recvd,
        bytes_sent=link.bytes_sent,
        rate_recvd=getattr(link, "rate_recvd", 0),
        rate_sent=getattr(link, "rate_sent", 0),
        uptime=link.uptime,
        latency=round(latency * 1e9) if latency else 0,
    )
    if form == BOTH:
        if version == V04:
            row["coords"] = list(info.coords)
        row["version"] = version
    return row


def down_peers(node: Any) -> list[dict[str, Any]]:
    """0.5.12's rows of the configured peers that have no link up."""
    links = getattr(node, "links", None)
    now = node.reactor.seconds()
    rows = []
    for peer in getattr(links, "persistent", {}).values():
        if peer.link is not None:
            continue  # up: listed with the links
        error = getattr(peer, "last_error", None) or ""
        when = getattr(peer, "last_error_time", None)
        rows.append(
            entry05(
                remote=without_query(peer.uri.url),
                up=False,
                inbound=False,
                last_error=error,
                last_error_time=round((now - when) * 1e9) if error and when is not None else 0,
            )
        )
    return rows


def entry05(
    *,
    remote: str = "",
    up: bool,
    inbound: bool,
    key: bytes = b"",
    port: int = 0,
    priority: int = 0,
    cost: int = 0,
    bytes_recvd: int = 0,
    bytes_sent: int = 0,
    rate_recvd: int = 0,
    rate_sent: int = 0,
    uptime: float = 0.0,
    latency: int = 0,
    last_error_time: int = 0,
    last_error: str = "",
) -> dict[str, Any]:
    """One row of 0.5.12's getPeers, its members in Go's order, empty ones left out as
    Go's ``omitempty`` leaves them out."""
    row: dict[str, Any] = {}
    if remote:
        row["remote"] = remote
    row["up"] = up
    row["inbound"] = inbound
    if key:
        row["address"] = _ip(key)
    row["key"] = key.hex()
    row["port"] = port
    row["priority"] = priority
    row["cost"] = cost
    for name, value in (
        ("bytes_recvd", bytes_recvd),
        ("bytes_sent", bytes_sent),
        ("rate_recvd", rate_recvd),
        ("rate_sent", rate_sent),
        ("uptime", uptime),
        ("latency", latency),
        ("last_error_time", last_error_time),
        ("last_error", last_error),
    ):
        if value:
            row[name] = value
    return row


def _go_order(a: dict[str, Any], b: dict[str, Any]) -> int:
    """0.5.12's comparison: outbound first, then key, priority, cost, and uptime in whole
    seconds (Go compares ``int(a.Uptime - b.Uptime)``)."""
    if a["inbound"] != b["inbound"]:
        return 1 if a["inbound"] else -1
    if a["key"] != b["key"]:
        return -1 if a["key"] < b["key"] else 1
    for name in ("priority", "cost"):
        if a[name] != b[name]:
            return a[name] - b[name]
    return int(a.get("uptime", 0.0) - b.get("uptime", 0.0))
