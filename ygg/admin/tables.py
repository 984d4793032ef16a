"""Admin replies as text, the way yggdrasilctl 0.4.7 and 0.5.12 print them.

Both draw their tables with olekukonko/tablewriter set up without borders, left-aligned,
cells padded to the column width and each followed by a tab; the header row is centred in
the column and its last cell ends with a space instead.  0.4.7 writes byte counters in
Go's ``%2.f`` with a unit (`` 1kb``, ``12mb``), 0.5.12 as ``%2.1f`` (``1.5KB``, ``99B``);
uptimes are a Go ``time.Duration`` of whole seconds (``1h2m3s``), lists ``%v``
(``[1 2]``).

``render`` gives the text for the commands yggdrasilctl draws a table for (``""`` for
addPeer and removePeer, which print nothing) and None for the rest, in the ``form`` of
the reply: 0.4.7's tables, or 0.5.12's (``"0.5"``) which a node running both versions
answers too — with a Version column when its rows say which network they are of.
``ygg ctl`` and the SSH shell both use it, so both print what yggdrasilctl prints.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

_ANSI = re.compile("\033\\[(?:[0-9]{1,3}(?:;[0-9]{1,3})*)?[m|K]")


def display_width(text: str) -> int:
    """Terminal columns of ``text``: wide East Asian characters count two, combining
    marks none (as go-runewidth counts them), ANSI colour codes nothing."""
    width = 0
    for char in _ANSI.sub("", text):
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _pad_right(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def _pad_centre(text: str, width: int) -> str:
    gap = width - display_width(text)
    if gap <= 0:
        return text
    left = gap // 2
    return " " * left + text + " " * (gap - left)


def table(rows: Iterable[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """The table text yggdrasilctl prints for these rows (and header, if any)."""
    header_cells = [cell.split("\n") for cell in header or ()]
    body = [[cell.split("\n") for cell in row] for row in rows]
    widths: dict[int, int] = {}
    for cells in ([header_cells] if header_cells else []) + body:
        for i, lines in enumerate(cells):
            widths[i] = max(widths.get(i, 0), *(display_width(line) for line in lines))
    out: list[str] = []
    if header_cells:
        last = len(widths) - 1
        for x in range(max(len(lines) for lines in header_cells)):
            line = []
            for y in range(last + 1):
                cell = header_cells[y] if y < len(header_cells) else []
                text = cell[x] if x < len(cell) else ""
                line.append(_pad_centre(text, widths[y]) + (" " if y == last else "\t"))
            out.append("".join(line) + "\n")
    for cells in body:
        height = max((len(lines) for lines in cells), default=0)
        for x in range(height):
            line = []
            for y, lines in enumerate(cells):
                # tablewriter fills the missing lines of a shorter cell with two spaces
                text = lines[x] if x < len(lines) else "  "
                line.append(_pad_right(text, widths[y]) + "\t")
            out.append("".join(line) + "\n")
    return "".join(out)


# --------------------------------------------------------------------------- Go formats


def data_unit(count: Any) -> str:
    """yggdrasil's DataUnit: ``%2.f`` of the count in the largest unit it exceeds."""
    n = int(count)
    for limit, unit in ((1 << 40, "tb"), (1 << 30, "gb"), (1 << 20, "mb")):
        if n > limit:
            return f"{n / limit:2.0f}{unit}"
    return f"{n / 1024:2.0f}kb"


def go_duration(seconds: Any) -> str:
    """``(time.Duration(seconds) * time.Second).String()``: whole seconds, truncated."""
    total = int(float(seconds))
    if total == 0:
        return "0s"
    sign, total = ("-", -total) if total < 0 else ("", total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def go_list(values: Any) -> str:
    """``fmt.Sprintf("%v", []uint64{…})``."""
    return "[" + " ".join(str(v) for v in values or ()) + "]"


def go_bool(value: Any) -> str:
    return "true" if value else "false"


def field(obj: Any, name: str, default: Any = "") -> Any:
    """A member as Go's decoder finds a struct field: exact name first, then any case
    (a null object has only zero values)."""
    if obj is None:
        return default
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected an object, got {type(obj).__name__}")
    if name in obj:
        value = obj[name]
    else:
        value = next((v for k, v in obj.items() if k.lower() == name.lower()), default)
    return default if value is None else value


def _rows(response: Any, name: str) -> list[Any]:
    rows = field(response, name, [])
    if not isinstance(rows, list):
        raise TypeError(f"{name}: expected a list, got {type(rows).__name__}")
    return rows


# --------------------------------------------------------------------------- commands


def _list(response: Any) -> str:
    rows = []
    for entry in _rows(response, "list"):
        fields = ", ".join(f"{f}=..." for f in field(entry, "fields", []))
        rows.append([field(entry, "command"), fields, field(entry, "description")])
    return table(rows, ["Command", "Arguments", "Description"])


def _get_self(response: Any) -> str:
    return table(
        [
            ["Build name:", field(response, "build_name")],
            ["Build version:", field(response, "build_version")],
            ["IPv6 address:", field(response, "address")],
            ["IPv6 subnet:", field(response, "subnet")],
            ["Coordinates:", go_list(field(response, "coords", []))],
            ["Public key:", field(response, "key")],
        ]
    )


def _get_peers(response: Any) -> str:
    rows = [
        [
            str(int(field(p, "port", 0))),
            field(p, "key"),
            field(p, "address"),
            go_duration(field(p, "uptime", 0)),
            data_unit(field(p, "bytes_recvd", 0)),
            data_unit(field(p, "bytes_sent", 0)),
            str(int(field(p, "priority", 0))),
            field(p, "remote"),
        ]
        for p in _rows(response, "peers")
    ]
    return table(rows, ["Port", "Public Key", "IP Address", "Uptime", "RX", "TX", "Pr", "URI"])


def _get_dht(response: Any) -> str:
    rows = [
        [
            field(d, "key"),
            field(d, "address"),
            str(int(field(d, "port", 0))),
            str(int(field(d, "rest", 0))),
        ]
        for d in _rows(response, "dht")
    ]
    return table(rows, ["Public Key", "IP Address", "Port", "Rest"])


def _get_paths(response: Any) -> str:
    rows = [
        [field(p, "key"), field(p, "address"), go_list(field(p, "path", []))]
        for p in _rows(response, "paths")
    ]
    return table(rows, ["Public Key", "IP Address", "Path"])


def _get_sessions(response: Any) -> str:
    rows = [
        [
            field(s, "key"),
            field(s, "address"),
            go_duration(field(s, "uptime", 0)),
            data_unit(field(s, "bytes_recvd", 0)),
            data_unit(field(s, "bytes_sent", 0)),
        ]
        for s in _rows(response, "sessions")
    ]
    return table(rows, ["Public Key", "IP Address", "Uptime", "RX", "TX"])


def _get_multicast_interfaces(response: Any) -> str:
    return table([[str(name)] for name in _rows(response, "multicast_interfaces")], ["Interface"])


def _get_tun(response: Any) -> str:
    enabled = bool(field(response, "enabled", False))
    rows = [["TUN enabled:", go_bool(enabled)]]
    if enabled:
        rows.append(["Interface name:", field(response, "name")])
        rows.append(["Interface MTU:", str(int(field(response, "mtu", 0)))])
    return table(rows)


RENDERERS: dict[str, Callable[[Any], str]] = {
    "list": _list,
    "getself": _get_self,
    "getpeers": _get_peers,
    "getdht": _get_dht,
    "getpaths": _get_paths,
    "getsessions": _get_sessions,
    "getmulticastinterfaces": _get_multicast_interfaces,
    "gettun": _get_tun,
    "addpeer": lambda response: "",
    "removepeer": lambda response: "",
}


# --------------------------------------------------------------------------- 0.5.12's


def data_unit05(count: Any) -> str:
    """0.5.12's DataUnit: ``%2.1f`` in the largest unit reached, plain bytes below 100."""
    n = int(count)
    for limit, unit in ((1 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB")):
        if n >= limit:
            return f"{n / limit:2.1f}{unit}"
    return f"{n / 1024:2.1f}KB" if n >= 100 else f"{n}B"


def go_round_seconds(nanoseconds: Any) -> str:
    """``time.Duration(ns).Round(time.Second).String()``: halves away from zero."""
    ns = int(nanoseconds)
    seconds, rest = divmod(abs(ns), 1_000_000_000)
    if rest >= 500_000_000:
        seconds += 1
    return go_duration(-seconds if ns < 0 else seconds)


def _version_column(rows: list[Any]) -> bool:
    """Whether the rows carry ygg's ``version`` member (a node running both versions)."""
    return any(isinstance(r, Mapping) and "version" in r for r in rows)


def _with_version(header: list[str], cells: list[list[str]], rows: list[Any], at: int) -> str:
    if _version_column(rows):
        header = [*header[:at], "Version", *header[at:]]
        cells = [
            [*c[:at], str(field(r, "version")), *c[at:]] for c, r in zip(cells, rows, strict=True)
        ]
    return table(cells, header)


def _get_self05(response: Any) -> str:
    rows = [
        ["Build name:", field(response, "build_name")],
        ["Build version:", field(response, "build_version")],
        ["IPv6 address:", field(response, "address")],
        ["IPv6 subnet:", field(response, "subnet")],
    ]
    if isinstance(response, Mapping) and "coords" in response:  # a node running both
        rows.append(["Coordinates:", go_list(field(response, "coords", []))])
    rows.append(["Routing table size:", str(int(field(response, "routing_entries", 0)))])
    rows.append(["Public key:", field(response, "key")])
    return table(rows)


def _get_peers05(response: Any) -> str:
    peers = _rows(response, "peers")
    cells = []
    for p in peers:
        state, last_error, rtt = "Up", "-", "-"
        if not field(p, "up", False):
            age = go_round_seconds(field(p, "last_error_time", 0))
            state, last_error = "Down", f"{age} ago: {field(p, 'last_error')}"
        elif (ms := (int(field(p, "latency", 0)) // 1000) / 1000) > 0:
            rtt = f"{ms:.2f}ms"
        down, up = int(field(p, "rate_recvd", 0)), int(field(p, "rate_sent", 0))
        cells.append(
            [
                without_query(field(p, "remote")),
                state,
                "In" if field(p, "inbound", False) else "Out",
                field(p, "address"),
                go_duration(field(p, "uptime", 0)),
                rtt,
                data_unit05(field(p, "bytes_recvd", 0)),
                data_unit05(field(p, "bytes_sent", 0)),
                f"{data_unit05(down)}/s" if down > 0 else "-",
                f"{data_unit05(up)}/s" if up > 0 else "-",
                str(int(field(p, "priority", 0))),
                str(int(field(p, "cost", 0))),
                last_error,
            ]
        )
    header = [
        "URI",
        "State",
        "Dir",
        "IP Address",
        "Uptime",
        "RTT",
        "RX",
        "TX",
        "Down",
        "Up",
        "Pr",
        "Cost",
        "Last Error",
    ]
    return _with_version(header, cells, peers, 3)


def _get_tree05(response: Any) -> str:
    rows = [
        [
            field(t, "key"),
            field(t, "address"),
            field(t, "parent"),
            str(int(field(t, "sequence", 0))),
        ]
        for t in _rows(response, "tree")
    ]
    return table(rows, ["Public Key", "IP Address", "Parent", "Sequence"])


def _get_paths05(response: Any) -> str:
    paths = _rows(response, "paths")
    cells = [
        [
            field(p, "key"),
            field(p, "address"),
            go_list(field(p, "path", [])),
            str(int(field(p, "sequence", 0))),
        ]
        for p in paths
    ]
    return _with_version(["Public Key", "IP Address", "Path", "Seq"], cells, paths, 2)


def _get_sessions05(response: Any) -> str:
    sessions = _rows(response, "sessions")
    cells = [
        [
            field(s, "key"),
            field(s, "address"),
            go_duration(field(s, "uptime", 0)),
            data_unit05(field(s, "bytes_recvd", 0)),
            data_unit05(field(s, "bytes_sent", 0)),
        ]
        for s in sessions
    ]
    return _with_version(["Public Key", "IP Address", "Uptime", "RX", "TX"], cells, sessions, 2)


def _get_multicast_interfaces05(response: Any) -> str:
    interfaces = _rows(response, "multicast_interfaces")
    if any(isinstance(i, str) for i in interfaces):  # asked for 0.4.7's (version=0.4)
        return _get_multicast_interfaces(response)

    def yes(value: Any) -> str:
        return "Yes" if value else "-"

    rows = [
        [
            field(i, "name"),
            field(i, "address"),
            yes(field(i, "beacon", False)),
            yes(field(i, "listen", False)),
            yes(field(i, "password", False)),
        ]
        for i in interfaces
    ]
    return table(rows, ["Name", "Listen Address", "Beacon", "Listen", "Password"])


def without_query(uri: str) -> str:
    """A peer URI less its query, as 0.5.12 names a link and its yggdrasilctl shows it
    (Go's ``u.RawQuery = ""``)."""
    rest, hash_, fragment = uri.partition("#")
    return rest.split("?", 1)[0] + hash_ + fragment


RENDERERS05: dict[str, Callable[[Any], str]] = {
    **RENDERERS,
    "getself": _get_self05,
    "getpeers": _get_peers05,
    "gettree": _get_tree05,
    "getpaths": _get_paths05,
    "getsessions": _get_sessions05,
    "getmulticastinterfaces": _get_multicast_interfaces05,
}


def render(command: str, response: Any, form: str = "0.4") -> str | None:
    """yggdrasilctl's text for this command's response (0.4.7's tables, or 0.5.12's when
    ``form`` is "0.5"), or None when it has no table for it.  Raises TypeError or
    ValueError when the response does not have the shape the command's table needs
    (yggdrasilctl fails there too)."""
    renderers = RENDERERS05 if form == "0.5" else RENDERERS
    renderer = renderers.get(command.lower())
    return None if renderer is None else renderer(response)


def generic(rows: Sequence[Mapping[str, Any]]) -> str:
    """A table of arbitrary rows (a plugin's list of objects): one column per key, in
    the order keys first appear, headed by the key."""
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return go_bool(value)
        if isinstance(value, list):
            return go_list(value)
        return str(value)

    return table([[cell(row.get(c)) for c in columns] for row in rows], columns)
