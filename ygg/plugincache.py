"""twistd's plugin cache, quiet when it cannot be written.

twistd finds ``twistd ygg`` through ``twisted/plugins/ygg_plugin.py``: its scan
(``twisted.plugin.getPlugins``) keeps a cache, ``dropin.cache``, beside the plugin files and
rewrites it whenever a plugin file is newer.  When the directory belongs to root and the
node runs as another user (a system install under a service account, as contrib's systemd
unit does), the rewrite fails and Twisted logs ``Unable to write to plugin cache …`` at
every start.  The cache is only a speed-up, so that message is not worth a line.

Twisted has no public switch for it: the scan logs through the module attribute
``twisted.plugin.log``.  The scan imports ``ygg_plugin.py`` (whenever the cache is stale, which
is exactly when it is about to try the write), and that calls ``quiet()``, which wraps that
attribute to pass every message on except this one.  ``scripts/setup.sh`` also primes the
cache after installing, so a normal install has nothing to rewrite.
"""

from __future__ import annotations

from typing import Any

_MESSAGE = "Unable to write to plugin cache"


class _QuietScanLog:
    """Stands in for ``twisted.python.log`` inside ``twisted.plugin``."""

    def __init__(self, log: Any) -> None:
        self._log = log

    def msg(self, *args: Any, **kwargs: Any) -> None:
        if _MESSAGE not in str(kwargs.get("format", "")):
            self._log.msg(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def quiet() -> None:
    """Drop the plugin scan's cache-write error from now on (idempotent)."""
    import twisted.plugin

    if not isinstance(twisted.plugin.log, _QuietScanLog):
        twisted.plugin.log = _QuietScanLog(twisted.plugin.log)  # type: ignore[assignment]
