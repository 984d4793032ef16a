"""``ygg crawl``: run a node's ``getDHTCrawl`` and show its progress while it runs.

``ygg crawl [--endpoint E] [--out FILE] [--interval S]`` asks the node's admin socket (the
one yggdrasilctl talks to) for ``getDHTCrawl`` on one connection.  While that request is
outstanding it asks ``getDHTCrawlProgress`` on fresh connections every ``S`` seconds and
prints a line on standard error whenever the figures change (nodes found, answered,
pending).  The result is written as the node sent it, to FILE or standard output, and a
summary line goes to standard error.

The endpoint defaults as yggdrasilctl's does (``ygg.adminclient.default_endpoint``).

Plain sockets (``ygg.adminclient``), no Twisted.  The crawl itself is
``ygg.popura.crawler.service``, run by the node.
"""

from __future__ import annotations

import argparse
import select
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ygg import gojson
from ygg.adminclient import (
    DEFAULT_CONFIG_FILE,
    DEFAULT_ENDPOINT,
    MAX_REPLY,
    AdminClientError,
    call,
    connect,
    decode_reply,
    default_endpoint,
    encode_request,
)

#: Seconds to wait for a progress reply.
PROGRESS_TIMEOUT = 5.0


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
        data = bytearray()
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
                progress = call(endpoint, "getDHTCrawlProgress", timeout=PROGRESS_TIMEOUT)
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
    return decode_reply(bytes(data))


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
