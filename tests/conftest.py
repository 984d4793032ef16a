"""Every test leaves the process's signal state as it found it.

A test that builds the node as twistd does (``tap.makeService`` with a parent) installs
the node's stop and reload handlers and blocks SIGINT/SIGTERM until a reactor starts —
which an in-memory reactor never does.  Children started by later tests would inherit
that mask and ignore SIGTERM, so it is restored after each test.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@pytest.fixture(autouse=True)
def _restore_signals() -> Iterator[None]:
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    handlers = {number: signal.getsignal(number) for number in _HANDLED}
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for number, handler in handlers.items():
        if signal.getsignal(number) is not handler and handler is not None:
            signal.signal(number, handler)
