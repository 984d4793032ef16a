"""Finding the node's features (plugins providing IFeature) and their configuration."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from typing import Any

import twisted.plugin
from twisted.logger import Logger
from twisted.python import log as legacy_log

import ygg.plugins
from ygg.config import NodeConfig, override
from ygg.interfaces import IFeature

log = Logger()


class _PluginScanLog:
    """Stands in for ``twisted.python.log`` inside ``twisted.plugin`` during a scan.

    ``getPlugins`` refreshes ``dropin.cache`` beside the plugin modules and logs an error
    when it cannot write it — at every start of a node installed read-only.  The cache is
    only a speed-up, so that case is reported at debug level; everything else goes on.
    """

    def msg(self, *args: Any, **kwargs: Any) -> None:
        if "Unable to write to plugin cache" in str(kwargs.get("format", "")):
            log.debug(
                "plugin cache {path} is not writable; scanning without it", path=kwargs.get("path")
            )
            return
        legacy_log.msg(*args, **kwargs)

    def err(self, *args: Any, **kwargs: Any) -> None:
        legacy_log.err(*args, **kwargs)


@contextmanager
def _quiet_cache_errors() -> typing.Iterator[None]:
    saved = twisted.plugin.log
    twisted.plugin.log = _PluginScanLog()  # type: ignore[assignment]
    try:
        yield
    finally:
        twisted.plugin.log = saved


_found: list[Any] | None = None


def discover(refresh: bool = False) -> list[Any]:
    """All features installed, built-in and third-party, sorted by name (scanned once)."""
    global _found
    if _found is None or refresh:
        with _quiet_cache_errors():
            found = list(twisted.plugin.getPlugins(IFeature, ygg.plugins))
        _found = sorted(found, key=lambda f: f.name)
    return list(_found)


def feature_config(
    feature: Any, config: NodeConfig, overrides: Mapping[str, Any] | None = None
) -> Any:
    """A feature's section, with its command-line options (option name -> value) applied."""
    section = config.section(feature.section, feature.schema)
    for option in feature.options:
        if overrides and option.name in overrides:
            section = override(section, {option.key: overrides[option.name]}, f"--{option.name}")
    return section


def is_enabled(section: Any) -> bool:
    return bool(getattr(section, "enable", False))


def options_of(features: Iterable[Any]) -> list[Any]:
    return [option for feature in features for option in feature.options]
