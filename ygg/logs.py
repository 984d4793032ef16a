"""Log levels: one ``--loglevel`` (default info) for ``ygg run`` and ``twistd ygg`` alike.

yggdrasil's names are accepted (error, warn, info, debug, and trace, which is debug here);
events below the level are dropped before they reach the log.  ``ygg run`` filters its own
observer.  twistd shows every level of every event and has no option for it, so the node
gives twistd its log observer (the application's ``ILogObserver`` component, twistd's one
public hook for that) — filtered, and writing where twistd itself would have written.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from typing import Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LegacyLogObserverWrapper,
    LogLevel,
    LogLevelFilterPredicate,
    textFileLogObserver,
)

LEVELS = {
    "error": LogLevel.error,
    "warn": LogLevel.warn,
    "info": LogLevel.info,
    "debug": LogLevel.debug,
    "trace": LogLevel.debug,
}
DEFAULT = "info"
REACTOR_NAMESPACE = "twisted.internet.base"


def level_named(name: str) -> LogLevel:
    """The level for a ``--loglevel`` value (any case, as yggdrasil takes it)."""
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"--loglevel {name}: not one of {', '.join(LEVELS)}") from None


def filtered(observer: ILogObserver, level: LogLevel) -> ILogObserver:
    """``observer``, seeing only events at ``level`` or above."""
    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    if level == LogLevel.info:
        # The reactor's own "Main loop terminated." comes after the node's "Stopped".
        predicate.setLogLevelForNamespace(REACTOR_NAMESPACE, LogLevel.warn)
    return FilteringLogObserver(observer, [predicate])


def twistd_observer(server_options: Mapping[str, Any], reactor: Any) -> ILogObserver:
    """The observer twistd would make from its own options (``--syslog``/``--prefix``,
    ``--logfile``, ``-n``), made the same way, so that it can be handed back filtered.

    twistd builds it in a private method (``UnixAppLogger._getLogObserver``); this follows
    that method's choices, SIGUSR1 log rotation included.
    """
    if server_options.get("syslog"):
        from twisted.python import syslog

        emit = syslog.SyslogObserver(server_options.get("prefix") or "twisted").emit
        return LegacyLogObserverWrapper(emit)
    path = server_options.get("logfile") or ""
    nodaemon = server_options.get("nodaemon", False)
    if path == "-" and not nodaemon:
        raise SystemExit("Daemons cannot log to stdout, exiting!")
    if path == "-" or (nodaemon and not path):
        return textFileLogObserver(sys.stdout)
    from twisted.python.logfile import LogFile

    log_file = LogFile.fromFullPath(path or "twistd.log")
    if not signal.getsignal(signal.SIGUSR1):

        def rotate(number: int, frame: Any) -> None:
            reactor.callFromThread(log_file.rotate)

        signal.signal(signal.SIGUSR1, rotate)
    return textFileLogObserver(log_file)
