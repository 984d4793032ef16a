"""``ygg run``: the node in this process, as ``twistd -n ygg`` runs it, with yggdrasil's log lines.

Logs go to standard output as ``YYYY/MM/DD HH:MM:SS message`` (yggdrasil's format), or to
syslog or a file with ``--logto``, from ``--loglevel`` up; SIGINT and SIGTERM stop the node
cleanly (``ygg.stop_signals``).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from twisted.logger import LegacyLogObserverWrapper, formatEvent, globalLogBeginner
from twisted.python import usage

from ygg import logs, tap
from ygg.stop_signals import reload_on_signal, stop_on_signals


class RunOptions(tap.Options):
    optParameters = [
        ["logto", None, "stdout", '"stdout", "syslog" or a file to append to'],
    ]

    log_file: TextIO | None = None

    def postOptions(self) -> None:
        super().postOptions()
        # Opened here, so that a log file the node cannot write to is said on stderr, the
        # one place left to say it.
        if self["logto"] not in ("stdout", "syslog"):
            try:
                self.log_file = open(self["logto"], "a", encoding="utf-8")
            except OSError as e:
                raise usage.UsageError(f"--logto {self['logto']}: {e.strerror}") from None


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


def _observer(options: RunOptions) -> Any:
    if options["logto"] == "syslog":
        from twisted.python import syslog

        raw: Any = LegacyLogObserverWrapper(syslog.SyslogObserver("ygg").emit)
    else:
        raw = YggdrasilLogObserver(options.log_file or sys.stdout)
    return logs.filtered(raw, options.log_level)


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
    globalLogBeginner.beginLoggingTo([_observer(options)], redirectStandardIO=False)
    try:
        node = tap.makeService(options, reactor)
    except SystemExit as e:
        return int(e.code or 0)
    stop_on_signals(reactor)
    reload_on_signal(reactor, node.reload)
    # Started before the reactor runs, as twistd does: a node that cannot start (an
    # admin socket in use…) exits here with its own message.
    try:
        node.startService()
    except SystemExit as e:
        return int(e.code or 0)
    reactor.addSystemEventTrigger("before", "shutdown", node.stopService)
    reactor.run()
    return 0
