"""Which protocol a link speaks: the versions a node runs and how a dialer picks one.

Both Go versions write their handshake the moment a stream is up, and neither waits for
the other's.  ygg runs v0.4 and v0.5 side by side (docs/design.md, "Two versions on one
link layer"), so on each link it answers in the version the remote spoke first:

* a listener running both versions does not write first: the dialer's first 6 bytes say
  which version it speaks (:func:`ygg.v05.handshake.sniff_version`), and we answer in kind.
  Only a dialer silent for :data:`LISTEN_WAIT` (no Go node, no ygg one) gets v0.4's
  handshake first, and the link is then v0.4 as with 0.4.7;
* a dialer running both versions first waits a moment for the remote's handshake (Go
  listeners write at once), then writes v0.5 (a ygg listener answers v0.5).  The wait is
  :func:`dial_wait` of the measured connect (and TLS) time;
* a dialer that wrote one version and hears the other closes and redials speaking the
  remote's, and remembers it for that peer's next dials;
* a node running one version, or a link with a ``?password=`` (only v0.5 has one), writes
  that version at once, exactly as that version's Go node does.
"""

from __future__ import annotations

from collections.abc import Iterable

V04 = "0.4"
V05 = "0.5"
ALL = (V04, V05)

WAIT_FLOOR = 0.05  # seconds a dialer waits beyond twice the connect time
WAIT_MAX = 1.0  # and never longer than this
#: How long a listener running both versions waits for the dialer to speak: beyond any
#: dialer's wait, well within the 6 s handshake deadline.
LISTEN_WAIT = 2 * WAIT_MAX


def dial_wait(connect_time: float) -> float:
    """How long a dialer running both versions waits for the remote to speak first.

    ``connect_time`` is the time from dialing to the stream being up (TCP, TLS, SOCKS):
    a Go listener's handshake arrives about one round trip after that.
    """
    return min(WAIT_MAX, 2 * max(0.0, connect_time) + WAIT_FLOOR)


def versions_for(enabled: Iterable[str], password: bytes = b"") -> frozenset[str]:
    """The versions one link may speak: the node's, less v0.4 when the link has a
    password (v0.4 has no way to check one, so it would let anyone in)."""
    versions = frozenset(enabled)
    if password and V05 in versions:
        return frozenset((V05,))
    return versions
