"""SIGINT and SIGTERM stop the node, and the process then exits 0, as yggdrasil's does;
SIGHUP reloads its config (``reload_on_signal``).

The reactor's own handlers fall short twice: it leaves SIGINT alone when the process
started with SIGINT ignored (``node &`` in a script: a non-interactive shell starts its
background jobs so), and twistd kills itself with the signal that stopped the reactor, so
``twistd ygg`` would end with status 143 or 130.  So the process that runs a node (``ygg
run``, or twistd through ``ygg.tap``) takes both signals itself: at once, and again once the
reactor has started, since the reactor puts its own handlers over any other as it starts;
in between, the two signals are blocked, so none reaches the reactor's handlers (one that
comes meanwhile is delivered to ours then).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from twisted.internet.error import ReactorNotRunning
from twisted.logger import Logger, LogLevel

log = Logger(namespace="ygg")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_signals(reactor: Any) -> None:
    """From now on, SIGINT and SIGTERM stop ``reactor`` (which the process then runs)."""

    def stop(number: int) -> None:
        try:
            reactor.stop()
        except ReactorNotRunning:  # a second signal while stopping
            return
        log.info("Received {signal}, shutting down.", signal=signal.Signals(number).name)

    def handle(number: int, frame: FrameType | None) -> None:
        # Only hand over to the reactor here: a handler runs between any two bytecodes.
        reactor.callFromThread(stop, number)

    def install() -> None:
        for number in STOP_SIGNALS:
            signal.signal(number, handle)

    def reinstall() -> None:
        install()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    install()
    # The reactor puts its own handlers in while it starts ("during startup"), before this
    # trigger runs; the signals are held back until ours are back, so none can reach the
    # reactor's in between (a signal that came meanwhile is delivered to ours then).
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    reactor.addSystemEventTrigger("during", "startup", reinstall)


def reload_on_signal(reactor: Any, reload: Callable[[], Any]) -> None:
    """From now on, SIGHUP calls ``reload`` in the reactor (it says itself what it did or
    why it could not; its Deferred's failure is only logged at debug level here).  The
    reactor leaves SIGHUP alone, so this handler stays as it is installed."""

    def run() -> None:
        reload().addErrback(lambda failure: log.failure("Reload", failure, level=LogLevel.debug))

    def handle(number: int, frame: FrameType | None) -> None:
        reactor.callFromThread(run)

    signal.signal(signal.SIGHUP, handle)
