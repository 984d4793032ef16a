"""JSON text as Go's encoding/json writes it.

yggdrasil's admin replies and NodeInfo are Go-encoded: numbers in Go's float64 form
(``1.0`` is ``1``, ``1e-7`` is ``1e-07`` → ``1e-7``), ``<``, ``>``, ``&``, U+2028 and U+2029
escaped, other non-ASCII written as UTF-8, and ``\\b``/``\\f`` written as ``\\u0008``/``\\u000c``
(the Go release Debian built 0.4.7 with).  Map keys are sorted when Go would sort them
(``sort_keys``: maps) and kept in order otherwise (structs).
"""

from __future__ import annotations

import json
import math
from typing import Any

_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
    "\b": "\\u0008",
    "\f": "\\u000c",
}


class GoNumber(float):
    """A number read from JSON that is written back exactly as it was (as Go re-indents a
    json.RawMessage without touching its numbers)."""

    text: str

    def __new__(cls, text: str) -> GoNumber:
        number = super().__new__(cls, float(text))
        number.text = text
        return number


def loads(text: str | bytes) -> Any:
    """JSON as a Go json.RawMessage carries it: key order and number text kept."""
    return json.loads(text, parse_float=GoNumber, parse_int=GoNumber)


def go_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for char, escape in _ESCAPES.items():
        if char in text:
            if char in "\b\f":
                encoded = encoded.replace("\\b" if char == "\b" else "\\f", escape)
            else:
                encoded = encoded.replace(char, escape)
    return encoded


def go_float(value: float) -> str:
    """strconv.FormatFloat as encoding/json uses it: shortest digits, 'f' between 1e-6
    and 1e21, 'e' outside, with the exponent's leading zero dropped."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {value}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    text = repr(value)
    magnitude = abs(value)
    if 1e-6 <= magnitude < 1e21:
        if "e" in text or "E" in text:
            from decimal import Decimal  # rare (≥ 1e16, < 1e-4): not in every node's memory

            text = format(Decimal(text), "f")
        if text.endswith(".0"):
            text = text[:-2]
        return text
    # Go's 'e' form is Python's repr form (1e-07, 1.5e+21); encoding/json then drops the
    # leading zero of a two-digit negative exponent.
    if len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
        text = text[:-2] + text[-1]
    return text


def dumps(
    value: Any,
    *,
    indent: int | None = None,
    sort_keys: bool = False,
    numbers_as_float: bool = False,
) -> str:
    """Go's json.Marshal (``indent=None``) or json.Encoder with SetIndent("", " " * indent).

    ``numbers_as_float``: every number is a float64, as in data Go decoded from JSON
    (NodeInfo); otherwise Python ints stay integers (Go integer fields).
    """
    out: list[str] = []
    _encode(value, out, indent, 0, sort_keys, numbers_as_float)
    return "".join(out)


def _encode(
    value: Any, out: list[str], indent: int | None, level: int, sort_keys: bool, floats: bool
) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, GoNumber):
        out.append(value.text)
    elif isinstance(value, int):
        out.append(go_float(float(value)) if floats else str(value))
    elif isinstance(value, float):
        out.append(go_float(value))
    elif isinstance(value, str):
        out.append(go_string(value))
    elif isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else list(value.items())
        if not items:
            out.append("{}")
            return
        out.append("{")
        for i, (key, item) in enumerate(items):
            if i:
                out.append(",")
            _newline(out, indent, level + 1)
            out.append(go_string(str(key)))
            out.append(": " if indent is not None else ":")
            _encode(item, out, indent, level + 1, sort_keys, floats)
        _newline(out, indent, level)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _newline(out, indent, level + 1)
            _encode(item, out, indent, level + 1, sort_keys, floats)
        _newline(out, indent, level)
        out.append("]")
    else:
        raise TypeError(f"json: unsupported type: {type(value).__name__}")


def _newline(out: list[str], indent: int | None, level: int) -> None:
    if indent is not None:
        out.append("\n" + " " * (indent * level))
