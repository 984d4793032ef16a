"""Giving the memory freed during start-up back to the kernel.

Starting a node allocates and frees a lot (modules executing, the config parsed, features
discovered); glibc keeps the freed pages of its heap for reuse, so they stay in the
node's RSS (~0.3 MiB of an everyday node's).  :func:`release` collects cyclic garbage
and asks glibc to return its free pages (``malloc_trim``); on a libc without it (musl)
it only collects.  The node calls it once the reactor runs (``ygg.tap``).
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any

_trim: Any = None


def _malloc_trim() -> Any:
    global _trim
    if _trim is None:
        try:
            # The process's own symbols include its libc's (no library search needed).
            _trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _trim = False
    return _trim


def release() -> bool:
    """Free what start-up left behind; True when glibc returned free pages."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim else False


def release_when_running(reactor: Any) -> None:
    """:func:`release` once the reactor has started and run its first round of calls."""
    reactor.callWhenRunning(reactor.callLater, 0, release)
