"""``ygg ctl``: yggdrasilctl's command line, against any node's admin socket.

``ygg ctl [-endpoint=URI] [-json] [-version] command [key=value …]`` sends what
yggdrasilctl sends (one line ``{"request":…,"arguments":{…}}``, every argument a string)
and prints what it prints: a table for the commands it knows (``ygg.admin.tables``), the
response as the node wrote it for the others, the response re-indented with ``-json``,
and ``Admin socket returned an error: …`` with exit status 1 when the node says so.
The tables are those of the yggdrasilctl of the node's version: 0.4.7's for a node that
answers ``"request": null``, 0.5.12's for one that echoes the request (a 0.5 node, or ygg
running v0.5, whose tables then show each row's network in a Version column); a
``version=0.4`` or ``version=0.5`` argument asks a node running both for that one's.

The endpoint defaults as yggdrasilctl's does: ``AdminListen`` of
/etc/yggdrasil/yggdrasil.conf when that file sets one, else
``unix:///var/run/yggdrasil/yggdrasil.sock``.

Where yggdrasilctl misbehaves, this one does not: it exits 1 (not 0) after a connection
or decoding failure, still printing yggdrasilctl's log lines; and ``host:port`` or
``[::1]:port`` endpoints connect over TCP (yggdrasilctl crashes or refuses them).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any, TextIO

from ygg import BUILD_NAME, __version__, gojson
from ygg import config as node_config
from ygg.admin import tables
from ygg.admin.rawjson import go_indent, members
from ygg.cli import command, parse_go_flags
from ygg.errors import ConfigError

DEFAULT_ENDPOINT = node_config.DEFAULT_ADMIN_LISTEN
DEFAULT_CONFIG_FILE = "/etc/yggdrasil/yggdrasil.conf"
#: Replies larger than this are refused (yggdrasilctl has no limit; a node never sends one).
MAX_REPLY = 256 << 20

_decoder = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


class Fatal(Exception):
    """What yggdrasilctl reports as ``Fatal error: …`` after its log lines."""


class _Log:
    """yggdrasilctl keeps its log lines in a buffer and prints them only on a fatal error."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, *words: Any) -> None:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S")
        self.lines.append(f"{stamp} {' '.join(str(w) for w in words)}")


# --------------------------------------------------------------------------- flags


def _usage(prog: str, out: TextIO, err: TextIO) -> None:
    print(f"Usage: {prog} [options] command [key=value] [key=value] ...\n", file=err)
    print("Options:", file=out)
    print(
        f'  -endpoint string\n    \tAdmin socket endpoint (default "{DEFAULT_ENDPOINT}")', file=err
    )
    print("  -json\n    \tOutput in JSON format (as opposed to pretty-print)", file=err)
    print("  -version\n    \tPrints the version of this build", file=err)
    print(file=out)
    print(
        "Please note that options must always specified BEFORE the command\n"
        "on the command line or they will be ignored.\n",
        file=out,
    )
    print('Commands:\n  - Use "list" for a list of available commands\n', file=out)
    print("Examples:", file=out)
    for example in (
        "list",
        "getPeers",
        "-json getSelf",
        f"getNodeInfo key={'0' * 8}…",
        "-endpoint=tcp://localhost:9001 getDHT",
        "-endpoint=unix:///var/run/ygg.sock getDHT",
    ):
        print(f"  -  {prog} {example}", file=out)


def parse_flags(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """yggdrasilctl's flags (Go's flag package rules, ``ygg.cli.parse_go_flags``)."""
    given, args = parse_go_flags(argv, {"json", "version"}, {"endpoint"})
    return {"endpoint": DEFAULT_ENDPOINT, "json": False, "version": False, **given}, args


def resolve_endpoint(flag: str, log: _Log, config_file: str = DEFAULT_CONFIG_FILE) -> str:
    """yggdrasilctl's choice: the flag, unless it is the default, in which case the
    default config file's AdminListen (when set and not ``none``) wins."""
    if flag != DEFAULT_ENDPOINT:
        log("Using endpoint", flag, "from command line")
        return flag
    try:
        with open(config_file, "rb") as f:
            data = f.read()
    except OSError:
        log("Can't open config file from default location", config_file)
        log("Falling back to platform default", DEFAULT_ENDPOINT)
        return DEFAULT_ENDPOINT
    try:
        cfg, _ = node_config.parse(data)
    except ConfigError as e:
        log("Can't use config file", config_file + ":", e)
        log("Falling back to platform default", DEFAULT_ENDPOINT)
        return DEFAULT_ENDPOINT
    if "AdminListen" in cfg.present and cfg.admin_listen not in ("none", ""):
        log("Found platform default config file", config_file)
        log("Using endpoint", cfg.admin_listen, "from AdminListen")
        return cfg.admin_listen
    log("Configuration file doesn't contain appropriate AdminListen option")
    log("Falling back to platform default", DEFAULT_ENDPOINT)
    return DEFAULT_ENDPOINT


# --------------------------------------------------------------------------- the socket


def _go_error(e: OSError) -> str:
    text = e.strerror or str(e)
    return text[:1].lower() + text[1:]


def _host_port(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def connect(endpoint: str, log: _Log) -> socket.socket:
    scheme, sep, rest = endpoint.partition("://")
    if sep and scheme.lower() == "unix":
        path = endpoint[7:]
        log("Connecting to UNIX socket", path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError as e:
            sock.close()
            raise Fatal(f"dial unix {path}: connect: {_go_error(e)}") from None
        return sock
    if sep and scheme.lower() == "tcp":
        hostport = rest.split("/", 1)[0]
    elif not sep and _host_port(endpoint) is not None:
        hostport = endpoint
    else:
        log("Unknown protocol or malformed address - check your endpoint")
        raise Fatal("protocol not supported")
    log("Connecting to TCP socket", hostport)
    address = _host_port(hostport)
    if address is None:
        raise Fatal(f"dial tcp {hostport}: missing port in address")
    try:
        return socket.create_connection(address)
    except OSError as e:
        raise Fatal(f"dial tcp {hostport}: connect: {_go_error(e)}") from None


def read_value(sock: socket.socket) -> str:
    """The first JSON value the node sends (json.Decoder.Decode), as text."""
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if chunk:
            buffer += chunk
            if len(buffer) > MAX_REPLY:
                raise Fatal("reply too large")
        text = buffer.decode("utf-8", errors="replace").lstrip(_WHITESPACE)
        if text:
            try:
                _, end = _decoder.raw_decode(text)
            except json.JSONDecodeError as e:
                if chunk and (e.pos >= len(text) or e.msg.startswith("Unterminated")):
                    continue
                if not chunk:
                    raise Fatal("unexpected EOF") from None
                raise Fatal(f"invalid character in the reply: {e.msg}") from None
            return text[:end]
        if not chunk:
            raise Fatal("EOF")


def request_line(name: str, arguments: dict[str, str]) -> bytes:
    """What yggdrasilctl writes: Go's encoder output for its request struct."""
    args = gojson.dumps(arguments, sort_keys=True)
    return f'{{"request":{gojson.go_string(name)},"arguments":{args}}}\n'.encode()


# --------------------------------------------------------------------------- the command


def run(
    argv: list[str],
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    prog: str = "ygg ctl",
    config_file: str = DEFAULT_CONFIG_FILE,
) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        flags, args = parse_flags(argv)
    except LookupError:
        _usage(prog, out, err)
        return 0
    except ValueError as e:
        print(e, file=err)
        _usage(prog, out, err)
        return 2
    if flags["version"]:
        print("Build name:", BUILD_NAME, file=out)
        print("Build version:", __version__, file=out)
        print(
            "To get the version number of the running Yggdrasil node, run",
            prog,
            "getSelf",
            file=out,
        )
        return 0
    if not args:
        _usage(prog, out, err)
        return 0
    log = _Log()
    try:
        return _run(flags, args, log, out, config_file)
    except Fatal as e:
        log("Fatal error:", e)
        print("\n".join(log.lines), file=out)
        return 1


def _run(flags: dict[str, Any], args: list[str], log: _Log, out: TextIO, config_file: str) -> int:
    endpoint = resolve_endpoint(flags["endpoint"], log, config_file)
    sock = connect(endpoint, log)
    log("Connected")
    name = ""
    arguments: dict[str, str] = {}
    for i, arg in enumerate(args):
        if i == 0:
            if arg.startswith("-"):
                log(f"Ignoring flag {arg} as it should be specified before other parameters")
                continue
            log(f"Sending request: {arg}")
            name = arg
            continue
        key, sep, value = arg.partition("=")
        if not sep:
            log("Ignoring invalid argument:", arg)
        else:
            arguments[key] = value
    try:
        try:
            sock.sendall(request_line(name, arguments))
            log("Request sent")
            text = read_value(sock)
        except OSError as e:
            raise Fatal(_go_error(e)) from None
    finally:
        sock.close()
    try:
        reply = {key.lower(): (value, raw) for key, value, raw in members(text)}
    except ValueError:
        raise Fatal(
            "json: cannot unmarshal the reply into Go value of type admin.AdminSocketResponse"
        ) from None
    status = reply.get("status", ("", ""))[0]
    if status == "error":
        error = reply.get("error", ("", ""))[0]
        if error:
            print("Admin socket returned an error:", error, file=out)
        else:
            print("Admin socket returned an error but didn't specify any error text", file=out)
        return 1
    # A reply without a response member: Go's RawMessage stays empty.
    response, raw = reply.get("response", (None, ""))
    if flags["json"]:
        print(go_indent(raw or "null"), file=out)
        return 0
    command_name = name.lower()
    if command_name in ("addpeer", "removepeer"):
        return 0
    # 0.5.12 echoes the request where 0.4.7 writes null: its replies get its tables, but
    # for a reply asked in 0.4.7's form (version=0.4, of ygg running both versions).
    echoes = isinstance(reply.get("request", (None,))[0], dict)
    form = "0.5" if echoes and arguments.get("version") != "0.4" else "0.4"
    renderers = tables.RENDERERS05 if form == "0.5" else tables.RENDERERS
    if not raw and (command_name == "getnodeinfo" or command_name in renderers):
        raise Fatal("unexpected end of JSON input")
    if command_name == "getnodeinfo":
        if raw == "null":
            return 0
        try:
            first = members(raw)
        except ValueError:
            raise Fatal(
                "json: cannot unmarshal the response into core.GetNodeInfoResponse"
            ) from None
        if first:
            print(first[0][2], file=out)
        return 0
    try:
        text = tables.render(command_name, response, form)
    except (TypeError, ValueError, AttributeError) as e:
        raise Fatal(f"json: cannot unmarshal the response: {e}") from None
    if text is None:
        print(raw, file=out)
    else:
        out.write(text)
    return 0


@command("ctl", "talk to a node's admin socket, as yggdrasilctl does")
def main(argv: list[str]) -> int:
    return run(argv)
