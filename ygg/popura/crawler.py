"""``ygg crawl``: run a node's ``getDHTCrawl`` and show its progress while it runs.

``ygg crawl [--endpoint E] [--out FILE] [--interval S]`` asks the node's admin socket (the
one yggdrasilctl talks to) for ``getDHTCrawl`` on one connection.  While that request is
outstanding it asks ``getDHTCrawlProgress`` on fresh connections every ``S`` seconds and
prints a line on standard error whenever the figures change (nodes found, answered,
pending).  The result is written as the node sent it, to FILE or standard output, and a
summary line goes to standard error.

The endpoint defaults as yggdrasilctl's does: ``AdminListen`` of
/etc/yggdrasil/yggdrasil.conf when that file sets one, else
``unix:///var/run/yggdrasil/yggdrasil.sock``.  ``unix:///path``, ``tcp://host:port`` and a
bare ``host:port`` are understood.

``ygg.cli`` imports this module at every start, so it stays cheap: plain sockets, no
Twisted.  The crawl itself is ``ygg.popura.crawler_service``, run by the node.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ygg import config as node_config
from ygg import gojson
from ygg.cli import command
from ygg.errors import ConfigError, YggError

DEFAULT_ENDPOINT = node_config.DEFAULT_ADMIN_LISTEN
DEFAULT_CONFIG_FILE = "/etc/yggdrasil/yggdrasil.conf"
#: Seconds to wait for a connection, and for a progress reply.
CONNECT_TIMEOUT = 10.0
PROGRESS_TIMEOUT = 5.0
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


def encode_request(name: str) -> bytes:
    return json.dumps({"request": name, "arguments": {}}).encode() + b"\n"


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


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return data
        data += chunk
        if len(data) > MAX_REPLY:
            raise AdminClientError("the admin socket's reply is too large")


def call(endpoint: str, name: str, timeout: float = PROGRESS_TIMEOUT) -> Any:
    """One request on a connection of its own; its response."""
    sock = connect(endpoint, timeout)
    try:
        sock.settimeout(timeout)
        sock.sendall(encode_request(name))
        return decode_reply(_read_all(sock))
    except OSError as e:
        raise AdminClientError(f"{name}: {e}") from None
    finally:
        sock.close()


def _count(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def progress_line(progress: dict[str, Any]) -> str:
    return (
        f"crawl: {_count(progress.get('found'))} nodes found, "
        f"{_count(progress.get('answered'))} answered, "
        f"{_count(progress.get('pending'))} pending "
        f"({_count(progress.get('elapsed_seconds'))} s)"
    )


def summary_line(response: Any) -> str:
    meta = response.get("dht_crawl", {}).get("meta", {}) if isinstance(response, dict) else {}
    try:
        seconds = float(meta.get("crawl_time_seconds", 0))
    except (TypeError, ValueError):
        seconds = 0.0
    return (
        f"crawl: done: {_count(meta.get('nodes_attempted'))} nodes, "
        f"{_count(meta.get('nodes_successful'))} answered, "
        f"{_count(meta.get('nodeinfo_successful'))} with NodeInfo, in {seconds:.1f} s"
    )


def crawl(
    endpoint: str,
    err: TextIO,
    *,
    interval: float = 1.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> Any:
    """Run getDHTCrawl, printing progress on ``err`` while waiting; its response."""
    sock = connect(endpoint)
    try:
        sock.sendall(encode_request("getDHTCrawl"))
        sock.setblocking(False)
        data = b""
        last = ""
        polling = True
        next_poll = monotonic() + interval
        while True:
            ready, _, _ = select.select([sock], [], [], max(0.0, next_poll - monotonic()))
            if ready:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
                if len(data) > MAX_REPLY:
                    raise AdminClientError("the admin socket's reply is too large")
                continue
            next_poll = monotonic() + interval
            if not polling:
                continue
            try:
                progress = call(endpoint, "getDHTCrawlProgress")
            except AdminClientError as e:
                # A node without the progress method, or one too busy to answer: wait
                # for the crawl without progress lines.
                print(f"crawl: no progress reports ({e})", file=err)
                polling = False
                continue
            if isinstance(progress, dict) and progress.get("running"):
                line = progress_line(progress)
                if line.split(" (")[0] != last.split(" (")[0]:
                    print(line, file=err, flush=True)
                    last = line
    except OSError as e:
        raise AdminClientError(f"getDHTCrawl: {e}") from None
    finally:
        sock.close()
    if not data.strip():
        raise AdminClientError("the admin socket closed without a reply")
    return decode_reply(data)


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = argparse.ArgumentParser(
        prog="ygg crawl", description="Crawl the network through a node's getDHTCrawl."
    )
    parser.add_argument(
        "--endpoint",
        "-endpoint",
        metavar="E",
        help=f"admin socket (default: AdminListen of {DEFAULT_CONFIG_FILE}, "
        f"else {DEFAULT_ENDPOINT})",
    )
    parser.add_argument(
        "--out", "-o", metavar="FILE", help="write the JSON there (default: standard output)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between progress reports (default 1)",
    )
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be positive")
    endpoint = args.endpoint or default_endpoint()
    try:
        response = crawl(endpoint, err, interval=args.interval)
    except AdminClientError as e:
        print(f"ygg crawl: {e}", file=err)
        return 1
    except KeyboardInterrupt:
        return 130
    text = gojson.dumps(response, indent=2) + "\n"
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            print(f"ygg crawl: cannot write {args.out}: {e}", file=err)
            return 1
    else:
        out.write(text)
        out.flush()
    print(summary_line(response), file=err)
    return 0


command("crawl", "crawl the whole network through a node's getDHTCrawl (DHTCrawler enabled)")(
    lambda argv: main(argv)
)
