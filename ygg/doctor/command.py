"""``ygg doctor [--config FILE | --useconffile FILE] [--timeout S] [--json]``.

Runs every check and prints a checklist, a fix under each problem, and a count; exit
status 0 when nothing failed (warnings are advice), 1 otherwise.  ``--json`` prints the
same as one object.  The host checks are quick and synchronous; the peer probes run on the
reactor, all at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from twisted.internet.defer import Deferred, succeed

from ygg.doctor import configcheck, kernel, peers, ports
from ygg.doctor.check import FAIL, OK, SKIP, WARN, Check
from ygg.doctor.host import Host

MARKS = {OK: "OK", WARN: "WARN", FAIL: "FAIL", SKIP: "SKIP"}


def host_checks(host: Any, path: str | None) -> tuple[Any, list[Check]]:
    """The config (or None) and every check that needs no network, in report order."""
    cfg, found = configcheck.load(path, host)
    running = ports.running_node(host, cfg)
    found += kernel.ipv6(host)
    found += kernel.tun(host, cfg)
    found += kernel.source_address(host, cfg)
    found += ports.admin_socket(host, cfg, running)
    found += ports.listeners(host, cfg, running)
    found += ports.admin_endpoints(host, cfg, running)
    found += ports.multicast(host, cfg, running)
    found += ports.meshname(host, cfg, running)
    return cfg, found


def run(
    reactor: Any, host: Any, path: str | None, probe: peers.Probe | None, timeout: float
) -> Deferred[list[Check]]:
    """Every check: the host's, then the peers' (probed on ``reactor``, or by ``probe``)."""
    cfg, found = host_checks(host, path)
    if cfg is None:
        return succeed(found)
    probing = peers.check_peers(cfg, probe or peers.real_probe(reactor), timeout)
    return probing.addCallback(lambda more: found + more)


def exit_status(found: list[Check]) -> int:
    return 1 if any(c.status == FAIL for c in found) else 0


def counts(found: list[Check]) -> dict[str, int]:
    return {status: sum(c.status == status for c in found) for status in MARKS}


def write_text(found: list[Check], out: TextIO, header: str) -> None:
    print(header, file=out)
    for check in found:
        print(f"{MARKS[check.status]:<5} {check.name}: {check.detail}", file=out)
        if check.fix and check.status in (WARN, FAIL):
            print(f"      fix: {check.fix}", file=out)
    total = counts(found)
    problems = "no problems" if not total[FAIL] else _plural(total[FAIL], "problem")
    print(f"{problems}, {_plural(total[WARN], 'warning')}", file=out)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def as_data(found: list[Check], path: str | None, uid: int) -> dict[str, Any]:
    return {
        "ok": exit_status(found) == 0,
        "config": path,
        "uid": uid,
        "counts": counts(found),
        "checks": [c.as_data() for c in found],
    }


def _run_reactor(start: Callable[[Any], Deferred[list[Check]]]) -> list[Check]:
    """Run the global reactor until ``start(reactor)``'s Deferred fires."""
    from twisted.internet import reactor

    outcome: list[Any] = []

    def begin() -> None:
        start(reactor).addBoth(outcome.append).addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(begin)
    reactor.run()
    if not outcome:
        raise KeyboardInterrupt
    result = outcome[0]
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


def main(argv: list[str], out: TextIO | None = None, host: Any = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ygg doctor",
        description="Check this host, and a node's config, for what would stop the node; "
        "print a fix for each problem.  Changes nothing.",
    )
    parser.add_argument(
        "--config",
        "--useconffile",
        "-c",
        dest="config",
        metavar="FILE",
        help=f"the node's config (default {configcheck.DEFAULT_PATH}, if it exists)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=peers.TIMEOUT,
        metavar="S",
        help=f"seconds each peer has to answer (default {peers.TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    host = host or Host()
    path = args.config
    try:
        found = _run_reactor(lambda reactor: run(reactor, host, path, None, args.timeout))
    except KeyboardInterrupt:
        print("ygg doctor: interrupted", file=sys.stderr)
        return 1
    shown = path or (configcheck.DEFAULT_PATH if host.stat(configcheck.DEFAULT_PATH) else None)
    if args.json:
        print(json.dumps(as_data(found, shown, host.euid()), indent=2), file=out)
    else:
        where = f"config {shown}" if shown else "no config"
        write_text(found, out, f"ygg doctor: {where}; checking as uid {host.euid()}")
    return exit_status(found)
