"""``ygg crawl``: run a node's network crawls and show their progress while they run.

``ygg crawl [--endpoint E] [--network V] [--out FILE] [--interval S]`` asks the node's
admin socket (the one yggdrasilctl talks to) for the crawl of each network it is in —
``getDHTCrawl`` (v0.4) and ``getTreeCrawl`` (v0.5), as its ``list`` shows them, or the
one ``--network 0.4|0.5`` names — each on a connection of its own, at once.  While they
are outstanding it asks their progress methods (``getDHTCrawlProgress``,
``getTreeCrawlProgress``) on fresh connections every ``S`` seconds and prints a line on
standard error whenever the figures change (nodes found, answered, pending).  The
result is written as the node sent it, to FILE or standard output — one network's reply,
or a list of them when there are several — and a summary line per network goes to
standard error.

``--map PICTURE`` (.svg, .png or .html) also draws the crawls (``.map``, imported only
then; it needs the ``map`` extra, checked before crawling), marking the crawling node,
whose key each crawl's ``meta`` names (a node that does not say is asked, getSelf).
``--from FILE`` (repeatable: one crawl per network) reads saved crawls instead of asking
a node, with ``--crawler KEY`` naming the node that crawled where their ``meta`` does
not.  With ``--map`` the JSON goes to standard output only when ``--json`` asks for it.

The endpoint defaults as yggdrasilctl's does (``ygg.adminclient.default_endpoint``).

Plain sockets (``ygg.adminclient``), no Twisted.  The crawls themselves are
``ygg.popura.crawler.service``, run by the node.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import time
from collections.abc import Callable, Sequence
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
#: The crawl method of each network (its progress method adds "Progress").
METHODS = {"0.4": "getDHTCrawl", "0.5": "getTreeCrawl"}


def _count(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def progress_line(progress: dict[str, Any], label: str = "crawl") -> str:
    return (
        f"{label}: {_count(progress.get('found'))} nodes found, "
        f"{_count(progress.get('answered'))} answered, "
        f"{_count(progress.get('pending'))} pending "
        f"({_count(progress.get('elapsed_seconds'))} s)"
    )


def _meta(response: Any) -> dict[str, Any]:
    """The ``meta`` of a crawl reply (``{"dht_crawl": {...}}``, ``{"tree_crawl": {...}}``)."""
    if isinstance(response, dict):
        for value in response.values():
            if isinstance(value, dict) and isinstance(value.get("meta"), dict):
                return value["meta"]
    return {}


def summary_line(response: Any, label: str = "crawl") -> str:
    meta = _meta(response)
    try:
        seconds = float(meta.get("crawl_time_seconds", 0))
    except (TypeError, ValueError):
        seconds = 0.0
    return (
        f"{label}: done: {_count(meta.get('nodes_attempted'))} nodes, "
        f"{_count(meta.get('nodes_successful'))} answered, "
        f"{_count(meta.get('nodeinfo_successful'))} with NodeInfo, in {seconds:.1f} s"
    )


def networks_of(endpoint: str) -> list[str]:
    """The networks the node crawls: those whose crawl method its ``list`` has; v0.4's
    alone when it has neither or will not say (its error then comes from the crawl)."""
    try:
        listing = json.dumps(call(endpoint, "list")).lower()
    except AdminClientError:
        return ["0.4"]
    found = [version for version, method in METHODS.items() if method.lower() in listing]
    return found or ["0.4"]


class _Running:
    """One crawl request waiting for its reply, and its progress so far."""

    def __init__(self, endpoint: str, version: str, label: str) -> None:
        self.method = METHODS[version]
        self.label = label
        self.data = bytearray()
        self.done = False
        self.polling = True
        self.last = ""
        self.sock: socket.socket = connect(endpoint)
        try:
            self.sock.sendall(encode_request(self.method))
            self.sock.setblocking(False)
        except OSError as e:
            self.sock.close()
            raise AdminClientError(f"{self.method}: {e}") from None

    def read(self) -> None:
        try:
            chunk = self.sock.recv(1 << 16)
        except OSError as e:
            raise AdminClientError(f"{self.method}: {e}") from None
        if not chunk:
            self.done = True
            return
        self.data += chunk
        if len(self.data) > MAX_REPLY:
            raise AdminClientError("the admin socket's reply is too large")

    def poll(self, endpoint: str, err: TextIO) -> None:
        try:
            progress = call(endpoint, self.method + "Progress", timeout=PROGRESS_TIMEOUT)
        except AdminClientError as e:
            # A node without the progress method, or one too busy to answer: wait for
            # the crawl without progress lines.
            print(f"{self.label}: no progress reports ({e})", file=err)
            self.polling = False
            return
        if isinstance(progress, dict) and progress.get("running"):
            line = progress_line(progress, self.label)
            if line.split(" (")[0] != self.last.split(" (")[0]:
                print(line, file=err, flush=True)
                self.last = line

    def reply(self) -> Any:
        if not self.data.strip():
            raise AdminClientError("the admin socket closed without a reply")
        return decode_reply(bytes(self.data))


def crawl(
    endpoint: str,
    err: TextIO,
    *,
    interval: float = 1.0,
    monotonic: Callable[[], float] = time.monotonic,
    networks: Sequence[str] = ("0.4",),
) -> list[Any]:
    """Run the crawl of each network at once, printing progress on ``err`` while
    waiting; their responses, in the order of ``networks``."""
    running: list[_Running] = []
    try:
        for version in networks:
            label = "crawl" if len(networks) == 1 else f"crawl v{version}"
            running.append(_Running(endpoint, version, label))
        next_poll = monotonic() + interval
        while not all(r.done for r in running):
            waiting = [r.sock for r in running if not r.done]
            ready, _, _ = select.select(waiting, [], [], max(0.0, next_poll - monotonic()))
            if ready:
                for r in running:
                    if r.sock in ready:
                        r.read()
                continue
            next_poll = monotonic() + interval
            for r in running:
                if not r.done and r.polling:
                    r.poll(endpoint, err)
    finally:
        for r in running:
            r.sock.close()
    return [r.reply() for r in running]


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
        description="Crawl the networks through a node's getDHTCrawl (v0.4) and getTreeCrawl "
        "(v0.5), or draw saved crawls.",
    )
    parser.add_argument(
        "--endpoint",
        "-endpoint",
        metavar="E",
        help=f"admin socket (default: AdminListen of {DEFAULT_CONFIG_FILE}, "
        f"else {DEFAULT_ENDPOINT})",
    )
    parser.add_argument(
        "--network",
        choices=("0.4", "0.5", "all"),
        default="all",
        help="the network to crawl: 0.4 (getDHTCrawl), 0.5 (getTreeCrawl), or all "
        "(default: every network the node is in, at once)",
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
        networks = networks_of(endpoint) if args.network == "all" else [args.network]
        try:
            results = crawl(endpoint, err, interval=args.interval, networks=networks)
        except AdminClientError as e:
            print(f"ygg crawl: {e}", file=err)
            return 1
        except KeyboardInterrupt:
            return 130
        response = results[0] if len(results) == 1 else results
        crawler = args.crawler
        if args.map and not crawler and not any(_meta(r).get("crawler") for r in results):
            crawler = crawler_key(endpoint)  # a node whose crawls do not name it
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
        for version, result in zip(networks, results, strict=True):
            label = "crawl" if len(results) == 1 else f"crawl v{version}"
            print(summary_line(result, label), file=err)
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
