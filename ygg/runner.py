"""``ygg run``: the node in this process, as ``twistd -n ygg`` runs it, with yggdrasil's log lines.

Logs go to standard output as ``YYYY/MM/DD HH:MM:SS message`` (yggdrasil's format), or to
syslog or a file with ``--logto``; SIGINT and SIGTERM stop the node cleanly.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from twisted.python import usage

from ygg import tap

LEVELS = {
    "error": LogLevel.error,
    "warn": LogLevel.warn,
    "info": LogLevel.info,
    "debug": LogLevel.debug,
    "trace": LogLevel.debug,
}


class RunOptions(tap.Options):
    optParameters = [
        ["loglevel", None, "info", "error, warn, info or debug"],
        ["logto", None, "stdout", '"stdout", "syslog" or a file to append to'],
    ]


class YggdrasilLogObserver:
    """Formats events as yggdrasil does: local time, no level, no namespace."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def __call__(self, event: dict[str, Any]) -> None:
        text = formatEvent(event)
        if event.get("log_failure") is not None:
            text = f"{text}\n{event['log_failure'].getTraceback()}"
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(event.get("log_time")))
        self._out.write(f"{stamp} {text}\n")
        self._out.flush()


def _observer(logto: str, level: str) -> Any:
    if logto == "syslog":
        from twisted.python import syslog

        raw: Any = syslog.SyslogObserver("ygg").emit
        from twisted.logger import LegacyLogObserverWrapper

        raw = LegacyLogObserverWrapper(raw)
    elif logto == "stdout":
        raw = YggdrasilLogObserver(sys.stdout)
    else:
        raw = YggdrasilLogObserver(open(logto, "a", encoding="utf-8"))
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS.get(level.lower(), LogLevel.info))
    return FilteringLogObserver(raw, [predicate])


def run(argv: list[str], reactor: Any = None) -> int:
    options = RunOptions()
    try:
        options.parseOptions(argv)
    except usage.UsageError as e:
        print(f"ygg run: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:
        return int(e.code or 0)
    if reactor is None:
        from twisted.internet import reactor
    globalLogBeginner.beginLoggingTo(
        [_observer(options["logto"], options["loglevel"])], redirectStandardIO=False
    )
    try:
        node = tap.makeService(options, reactor)
    except SystemExit as e:
        return int(e.code or 0)
    # Started before the reactor runs, as twistd does: a node that cannot start (an
    # admin socket in use…) exits here with its own message.
    try:
        node.startService()
    except SystemExit as e:
        return int(e.code or 0)
    reactor.addSystemEventTrigger("before", "shutdown", node.stopService)
    reactor.run()
    return 0
