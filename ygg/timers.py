"""Timer helpers for the sans-IO layers: they take any ``IReactorTime``-like clock."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

SLACK = 1e-6  # a timer firing this close to its deadline counts as on time

K = TypeVar("K")
E = TypeVar("E")


def cancel(timer: IDelayedCall | None) -> None:
    """Cancel ``timer`` unless it is None, has fired or is already cancelled."""
    if timer is not None and timer.active():
        timer.cancel()


def expire_idle(
    clock: Any,
    table: MutableMapping[K, E],
    key: K,
    entry: E,
    last_used: float,
    lifetime: float,
    recheck: Callable[[K, E], None],
) -> None:
    """The timer of ``table[key]`` fired: drop ``entry`` if idle for ``lifetime``, else re-arm.

    Entries stay alive by bumping a timestamp on use, not by rescheduling their timer on
    every packet; the timer looks at the timestamp when it fires and, if the entry was used
    since, sets ``entry.timer`` to fire again ``lifetime`` after that use via ``recheck``.
    A replaced entry (``table[key]`` is another object) is left alone.
    """
    if table.get(key) is not entry:
        return
    remaining = last_used + lifetime - clock.seconds()
    if remaining > SLACK:
        entry.timer = clock.callLater(remaining, recheck, key, entry)  # type: ignore[attr-defined]
    else:
        del table[key]
