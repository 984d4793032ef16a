"""Admin replies as text, the way yggdrasilctl 0.4.7 prints them.

yggdrasilctl draws its tables with olekukonko/tablewriter 0.0.5 set up without borders,
left-aligned, cells padded to the column width and each followed by a tab; the header row
is centred in the column and its last cell ends with a space instead.  Byte counters are
written in Go's ``%2.f`` with a unit (`` 1kb``, ``12mb``), uptimes as a Go
``time.Duration`` of whole seconds (``1h2m3s``), lists as ``%v`` (``[1 2]``).

``render`` gives the text for the commands yggdrasilctl draws a table for (``""`` for
addPeer and removePeer, which print nothing) and None for the rest; ``ygg ctl`` and the
SSH shell both use it, so both print what yggdrasilctl prints.
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


def render(command: str, response: Any) -> str | None:
    """yggdrasilctl's text for this command's response, or None when it has no table
    for it.  Raises TypeError or ValueError when the response does not have the shape
    the command's table needs (yggdrasilctl fails there too)."""
    renderer = RENDERERS.get(command.lower())
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
