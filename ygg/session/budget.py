"""Token buckets for the work that unauthenticated session packets can cause.

A session packet's network-layer source key is not authenticated: anyone can send traffic
"from" a fresh key, and each such packet could make us do public-key work (answer with an
init, open an init, make a session).  That work is paid for with tokens: one from the
bucket of the link the packet came in on and one from a bucket all links share.  A link's
rate is a fraction of the shared one, so one flooding link cannot spend what the others
need.  Time is whatever the caller passes in (sans-IO).
"""

from __future__ import annotations

from collections.abc import Hashable

#: Buckets of links no longer heard from are forgotten once there are this many.
MAX_LINKS = 256


class TokenBucket:
    """``rate`` tokens a second, holding at most ``rate`` (one second's worth)."""

    __slots__ = ("rate", "stamp", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = now

    def refill(self, now: float) -> float:
        """Bring the bucket up to ``now``; the tokens it holds."""
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.rate:
            tokens = self.rate
        self.tokens = tokens
        self.stamp = now
        return tokens


class Budget:
    """Per-link and shared token buckets for one kind of work."""

    __slots__ = ("_links", "link_rate", "shared")

    def __init__(self, link_rate: float, shared_rate: float, now: float) -> None:
        self.link_rate = link_rate
        self.shared = TokenBucket(shared_rate, now)
        self._links: dict[Hashable, TokenBucket] = {}

    def take(self, link: Hashable, now: float) -> str | None:
        """Spend a token of ``link`` and a shared one; or, if either is empty, spend
        nothing and say which ("link" or "shared")."""
        bucket = self._links.get(link)
        if bucket is None:
            if len(self._links) >= MAX_LINKS:
                self._forget_full(now)
            bucket = self._links[link] = TokenBucket(self.link_rate, now)
        if bucket.refill(now) < 1.0:
            return "link"
        if self.shared.refill(now) < 1.0:
            return "shared"
        bucket.tokens -= 1.0
        self.shared.tokens -= 1.0
        return None

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: a new one would be the same."""
        for link, bucket in list(self._links.items()):
            if bucket.refill(now) >= bucket.rate:
                del self._links[link]
