"""``ygg crawl``: run a node's ``getDHTCrawl`` and show its progress while it runs.

``ygg crawl [--endpoint E] [--out FILE] [--interval S]`` asks the node's admin socket (the
one yggdrasilctl talks to) for ``getDHTCrawl`` on one connection.  While that request is
outstanding it asks ``getDHTCrawlProgress`` on fresh connections every ``S`` seconds and
prints a line on standard error whenever the figures change (nodes found, answered,
pending).  The result is written as the node sent it, to FILE or standard output, and a
summary line goes to standard error.

``--map PICTURE`` (.svg, .png or .html) also draws the crawl (``.map``, imported only
then; it needs the ``map`` extra, checked before crawling), marking the crawling node,
whose key a live crawl asks the node for (getSelf).  ``--from FILE`` (repeatable: one
crawl per network) reads saved crawls instead of asking a node, with ``--crawler KEY``
naming the node that crawled.  With ``--map`` the JSON goes to standard output only
when ``--json`` asks for it.

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


def crawler_key(endpoint: str) -> str | None:
    """The node's own key (getSelf), to mark it on the map; None if it will not say."""
    try:
        me = call(endpoint, "getSelf")
    except AdminClientError:
        return None
    if isinstance(me, dict) and isinstance(me.get("self"), dict):  # 0.4's {self: {addr: {…}}}
        me = next(iter(me["self"].values()), None)
    key = me.get("key") if isinstance(me, dict) else None
    return key if isinstance(key, str) else None


class SourceError(Exception):
    """A saved crawl that cannot be read or drawn."""


def load(sources: list[str], check: bool) -> list[Any]:
    """Saved crawls, one per file (``check``: each must be one the map can draw)."""
    results = []
    for source in sources:
        try:
            with open(source, encoding="utf-8") as f:
                results.append(gojson.loads(f.read()))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise SourceError(f"cannot read {source}: {e}") from None
        if check:
            from ygg.popura.crawler import map as crawl_map

            try:
                crawl_map.check_results(results[-1])
            except crawl_map.MapError as e:
                raise SourceError(f"{source}: {e}") from None
    return results


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = argparse.ArgumentParser(
        prog="ygg crawl",
        description="Crawl the network through a node's getDHTCrawl, or draw saved crawls.",
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
    parser.add_argument(
        "--map",
        metavar="PICTURE",
        help="draw the crawled network into PICTURE: .svg, .png, or .html (pans and zooms); "
        "needs the map extra (pip install 'ygg[map]')",
    )
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        metavar="FILE",
        help="a saved crawl (JSON) instead of asking a node; repeat it for one crawl per network",
    )
    parser.add_argument(
        "--crawler",
        metavar="KEY",
        help="the crawling node's key, marked on the map (default: the node's own, when it crawls)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the crawl on standard output even with --map",
    )
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be positive")
    if args.map:
        from ygg.popura.crawler import map as crawl_map

        try:
            crawl_map.check_format(args.map)
            crawl_map.require_libraries()
        except crawl_map.MapError as e:
            print(f"ygg crawl: {e}", file=err)
            return 1
    if args.sources:
        try:
            results = load(args.sources, check=bool(args.map))
        except SourceError as e:
            print(f"ygg crawl: {e}", file=err)
            return 1
        response: Any = results[0] if len(results) == 1 else results
        crawler = args.crawler
    else:
        endpoint = args.endpoint or default_endpoint()
        crawler = args.crawler or (crawler_key(endpoint) if args.map else None)
        try:
            response = crawl(endpoint, err, interval=args.interval)
        except AdminClientError as e:
            print(f"ygg crawl: {e}", file=err)
            return 1
        except KeyboardInterrupt:
            return 130
        results = [response]
    text = gojson.dumps(response, indent=2) + "\n"
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            print(f"ygg crawl: cannot write {args.out}: {e}", file=err)
            return 1
    if args.json or not (args.out or args.map):
        out.write(text)
        out.flush()
    if not args.sources:
        print(summary_line(response), file=err)
    if args.map:
        return _draw(results, args.map, crawler, err)
    return 0


def _draw(results: list[Any], path: str, crawler: str | None, err: TextIO) -> int:
    from ygg.popura.crawler import map as crawl_map

    try:
        drawn = crawl_map.write_map(results, path, crawler=crawler)
    except crawl_map.MapError as e:
        print(f"ygg crawl: {e}", file=err)
        return 1
    except OSError as e:
        print(f"ygg crawl: cannot write {path}: {e}", file=err)
        return 1
    if crawler and drawn.crawler is None:
        print(f"ygg crawl: the crawling node {crawler} is not in the crawl", file=err)
    print(
        f"crawl: map of {len(drawn.nodes)} nodes and {len(drawn.edges)} peerings in {path}",
        file=err,
    )
    return 0
