"""``ygg peerwatch [--endpoint E] [--limit N]``: the node's last peer events, one a line."""

from __future__ import annotations

import argparse
import sys

from ygg import adminclient


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ygg peerwatch", description=__doc__)
    parser.add_argument("--endpoint", help="the node's admin socket (default: as yggdrasilctl)")
    parser.add_argument("--limit", type=int, default=20, help="at most this many events")
    args = parser.parse_args(argv)
    endpoint = args.endpoint or adminclient.default_endpoint()
    try:
        reply = adminclient.call(endpoint, "getPeerWatch", {"limit": str(args.limit)})
    except adminclient.AdminClientError as e:
        print(f"ygg peerwatch: {e}", file=sys.stderr)
        return 1
    for event in reply["events"]:
        print(f"{event['time']} {event['event']:<4} {event['key']} {event['remote']}")
    return 0
