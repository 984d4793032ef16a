"""The reply around a method's result, as the JSON socket writes it.

Both Go versions write ``{"status", "error" (on error), "request", "response"}`` with
json.Encoder's 2-space indent.  0.4.7's ``request`` is always null; 0.5.12 echoes the
request it read: ``{"request": name, "arguments": …, "keepalive": true}``, its arguments
exactly as sent (Go keeps a json.RawMessage's tokens, re-indented, HTML characters
escaped), ``{}`` when there were none, ``keepalive`` only when true; a request it could not
read at all is ``{"request": ""}``.  0.4.7's yggdrasilctl reads ``request`` as raw JSON
and 0.5.12's as that struct, so either form suits both clients; a node running v0.5
writes 0.5.12's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ygg import gojson
from ygg.admin.rawjson import go_indent, members

__all__ = ["UNREAD", "echo", "encode_reply"]

#: 0.5.12's echo of a request it could not decode or unmarshal.
UNREAD = '{"request":""}'
# A \ud800 escape without its pair: Go's decoder reads it as U+FFFD.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def echo(value: Any, text: str) -> str:
    """0.5.12's echo (compact JSON text) of the request ``value`` decoded from ``text``:
    its name and arguments as the node read them."""
    name = ""
    arguments = "{}"
    keepalive = False
    if isinstance(value, dict):
        name = _LONE_SURROGATE.sub("\ufffd", value.get("request") or "")
        keepalive = value.get("keepalive") is True
        for member, _, raw in members(text):
            if member == "arguments":  # the last one counts, as in the decoded value
                arguments = raw
    return (
        f'{{"request":{gojson.go_string(name)},"arguments":{arguments}'
        + (',"keepalive":true' if keepalive else "")
        + "}"
    )


def encode_reply(reply: Mapping[str, Any], request: str | None = None) -> bytes:
    """The reply as Go's encoder writes it; ``request`` is 0.5.12's echo (None: 0.4.7's
    null)."""
    text = gojson.dumps(reply, indent=2)
    if request is not None and "request" in reply:
        # The echo goes in as raw JSON, at the depth of the reply's members.
        indented = go_indent(request).replace("\n", "\n  ")
        head, null, tail = text.partition('\n  "request": null')
        if null:
            text = f'{head}\n  "request": {indented}{tail}'
    return (text + "\n").encode()
