"""A simulated ``IReactorTime`` that scales to thousands of timers.

``twisted.internet.task.Clock`` re-sorts all pending calls on every ``callLater``, which is
fine for a test with a handful of timers and quadratic for a simulated network with tens of
thousands.  This clock keeps a heap, and while advancing it sets the time to each call's
own time before running it (as a real reactor would), so frames and timers happen in the
order and at the moments they are due.  Ties run in the order they were scheduled.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer


@implementer(IDelayedCall)
class SimDelayedCall:
    __slots__ = ("_clock", "_entry", "args", "called", "cancelled", "func", "kw", "time")

    def __init__(
        self,
        clock: SimClock,
        time: float,
        func: Callable[..., Any],
        args: tuple,
        kw: dict[str, Any],
    ) -> None:
        self._clock = clock
        self.time = time
        self.func = func
        self.args = args
        self.kw = kw
        self.called = False
        self.cancelled = False
        self._entry: list[Any] | None = None

    def getTime(self) -> float:
        return self.time

    def active(self) -> bool:
        return not (self.called or self.cancelled)

    def cancel(self) -> None:
        if not self.active():
            from twisted.internet.error import AlreadyCalled, AlreadyCancelled

            raise AlreadyCancelled() if self.cancelled else AlreadyCalled()
        self.cancelled = True
        self._clock._forget(self)

    def reset(self, seconds_from_now: float) -> None:
        self._clock._forget(self)
        self.time = self._clock.seconds() + seconds_from_now
        self._clock._schedule(self)

    def delay(self, seconds_later: float) -> None:
        self._clock._forget(self)
        self.time += seconds_later
        self._clock._schedule(self)


@implementer(IReactorTime)
class SimClock:
    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[list[Any]] = []
        self._order = itertools.count()
        self._pending = 0

    def seconds(self) -> float:
        return self._now

    def callLater(
        self,
        delay: float,
        func: Callable[..., Any],
        *args: Any,
        **kw: Any,
    ) -> SimDelayedCall:
        call = SimDelayedCall(self, self._now + delay, func, args, kw)
        self._schedule(call)
        return call

    def _schedule(self, call: SimDelayedCall) -> None:
        entry = [call.time, next(self._order), call]
        call._entry = entry
        heapq.heappush(self._heap, entry)
        self._pending += 1

    def _forget(self, call: SimDelayedCall) -> None:
        if call._entry is not None:
            call._entry[2] = None  # removed lazily when it reaches the top
            call._entry = None
            self._pending -= 1

    def getDelayedCalls(self) -> list[SimDelayedCall]:
        return [e[2] for e in self._heap if e[2] is not None]

    def pending(self) -> int:
        return self._pending

    def advance(self, amount: float) -> None:
        """Run every call due within ``amount`` seconds, each at its own time."""
        end = self._now + amount
        heap = self._heap
        while heap and heap[0][0] <= end:
            entry = heapq.heappop(heap)
            call = entry[2]
            if call is None:
                continue
            self._pending -= 1
            call._entry = None
            self._now = max(self._now, entry[0])
            call.called = True
            call.func(*call.args, **call.kw)
        self._now = end
