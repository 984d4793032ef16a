"""JSON text as Go's encoding/json handles a ``json.RawMessage``: the members of an object
with the raw text of each value, and ``json.Indent``/``MarshalIndent`` of raw text (its
tokens kept as written, whitespace redone)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["go_indent", "members"]

_decoder = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


def members(text: str) -> list[tuple[str, Any, str]]:
    """The members of a JSON object as (name, value, raw text of the value)."""
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        raise ValueError("not an object")
    out: list[tuple[str, Any, str]] = []
    i = _skip(text, i + 1)
    if text[i : i + 1] == "}":
        return out
    while True:
        name, i = _decoder.raw_decode(text, i)
        i = _skip(text, i)
        if text[i : i + 1] != ":" or not isinstance(name, str):
            raise ValueError("bad object")
        start = _skip(text, i + 1)
        value, end = _decoder.raw_decode(text, start)
        out.append((name, value, text[start:end]))
        i = _skip(text, end)
        if text[i : i + 1] == "}":
            return out
        if text[i : i + 1] != ",":
            raise ValueError("bad object")
        i = _skip(text, i + 1)


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def go_indent(raw: str, indent: str = "  ") -> str:
    """json.MarshalIndent of raw JSON text: its tokens kept as written (HTML characters
    escaped), whitespace redone with ``indent``, empty objects and arrays kept as {} []."""
    out: list[str] = []
    depth = 0
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == '"':
            j = i + 1
            while raw[j] != '"':
                j += 2 if raw[j] == "\\" else 1
            out.append(_escape_html(raw[i : j + 1]))
            i = j + 1
            continue
        if c in _WHITESPACE:
            i += 1
            continue
        if c in "{[":
            k = _skip(raw, i + 1)
            if k < n and raw[k] in "}]":
                out.append(c + raw[k])
                i = k + 1
                continue
            depth += 1
            out.append(c + "\n" + indent * depth)
        elif c in "}]":
            depth -= 1
            out.append("\n" + indent * depth + c)
        elif c == ",":
            out.append(",\n" + indent * depth)
        elif c == ":":
            out.append(": ")
        else:
            out.append(c)
        i += 1
    return "".join(out)


_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _escape_html(text: str) -> str:
    for char, escape in _HTML.items():
        text = text.replace(char, escape)
    return text
