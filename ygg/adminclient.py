"""A small client of a node's JSON admin socket (the one yggdrasilctl talks to), for
command-line tools: plain blocking sockets, no Twisted, so a command stays cheap to start.

Part of the public API for features (``ygg.interfaces`` names it): a feature's command
asks its node with ``call(default_endpoint(), "getSomething")``.

The endpoint defaults as yggdrasilctl's does: ``AdminListen`` of
/etc/yggdrasil/yggdrasil.conf when that file sets one, else
``unix:///var/run/yggdrasil/yggdrasil.sock``.  ``unix:///path``, ``tcp://host:port`` and a
bare ``host:port`` are understood.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from ygg import config as node_config
from ygg import gojson
from ygg.errors import ConfigError, YggError

DEFAULT_ENDPOINT = node_config.DEFAULT_ADMIN_LISTEN
DEFAULT_CONFIG_FILE = "/etc/yggdrasil/yggdrasil.conf"
#: Seconds to wait for a connection, and for a reply of ``call``.
CONNECT_TIMEOUT = 10.0
CALL_TIMEOUT = 5.0
#: Replies larger than this are refused (a crawl of 100,000 nodes is well under).
MAX_REPLY = 512 << 20

# Numbers keep their text (NodeInfo's), so the result is written out as the node sent it.
_decoder = json.JSONDecoder(parse_float=gojson.GoNumber, parse_int=gojson.GoNumber)


class AdminClientError(YggError):
    """The admin socket could not be reached or gave no usable reply."""


def default_endpoint(config_file: str = DEFAULT_CONFIG_FILE) -> str:
    """yggdrasilctl's choice: the config file's AdminListen when it sets one."""
    try:
        with open(config_file, "rb") as f:
            cfg, _ = node_config.parse(f.read())
    except (OSError, ConfigError):
        return DEFAULT_ENDPOINT
    if "AdminListen" in cfg.present and cfg.admin_listen not in ("none", ""):
        return cfg.admin_listen
    return DEFAULT_ENDPOINT


def connect(endpoint: str, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """A connected socket to ``unix:///path``, ``tcp://host:port`` or ``host:port``."""
    try:
        if endpoint.lower().startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(endpoint[7:])
            except OSError:
                sock.close()
                raise
            return sock
        hostport = endpoint[6:] if endpoint.lower().startswith("tcp://") else endpoint
        host, _, port = hostport.rpartition(":")
        return socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout)
    except (OSError, ValueError) as e:
        raise AdminClientError(f"cannot reach the admin socket {endpoint}: {e}") from None


def encode_request(name: str, arguments: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"request": name, "arguments": arguments or {}}).encode() + b"\n"


def decode_reply(data: bytes) -> Any:
    """The reply's ``response``; AdminClientError with the node's text on an error."""
    try:
        text = data.decode()
        reply, _ = _decoder.raw_decode(text.lstrip())
    except (UnicodeDecodeError, ValueError):
        raise AdminClientError("the admin socket sent no valid JSON reply") from None
    if not isinstance(reply, dict):
        raise AdminClientError("the admin socket sent no valid JSON reply")
    if reply.get("status") != "success":
        raise AdminClientError(str(reply.get("error") or "the request failed"))
    return reply.get("response")


def read_all(sock: socket.socket) -> bytes:
    """Everything the node sends until it closes the connection."""
    data = bytearray()
    while chunk := sock.recv(1 << 16):
        data += chunk
        if len(data) > MAX_REPLY:
            raise AdminClientError("the admin socket's reply is too large")
    return bytes(data)


def call(
    endpoint: str, name: str, arguments: dict[str, Any] | None = None, timeout: float = CALL_TIMEOUT
) -> Any:
    """One request on a connection of its own; its response (AdminClientError with the
    node's text when it answers with an error)."""
    sock = connect(endpoint, timeout)
    try:
        sock.settimeout(timeout)
        sock.sendall(encode_request(name, arguments))
        return decode_reply(read_all(sock))
    except OSError as e:
        raise AdminClientError(f"{name}: {e}") from None
    finally:
        sock.close()
