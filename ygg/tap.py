"""twistd's view of ygg: ``twistd -n ygg --config FILE`` (or ``--autoconf``).

The command-line switches of installed features (``--autopeer``, ``--meshname``…) are
added to the options from the features themselves, so a third-party feature gets its
switch without a change here.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Any

from twisted.application.service import MultiService
from twisted.logger import ILogObserver, LogLevel
from twisted.python import usage

from ygg import config as node_config
from ygg import features as feature_registry
from ygg import heap, logs
from ygg.errors import ConfigError
from ygg.stop_signals import reload_on_signal, stop_on_signals


def config_error(error: ConfigError, source: str) -> SystemExit:
    """Print one line naming the bad key and return the exit to raise (status 1)."""
    print(f"ygg: {source}: {error}", file=sys.stderr)
    return SystemExit(1)


def reloadable(path: str | None) -> str | None:
    """The config's absolute path when it is a file a reload can read again: not
    standard input (``-useconf`` gives ``/dev/stdin``), another device or a pipe."""
    if not path:
        return None
    path = os.path.abspath(path)
    if path.startswith(("/dev/", "/proc/")):
        return None
    try:
        return path if stat.S_ISREG(os.stat(path).st_mode) else None
    except OSError:
        return None


def _feature_switches(features: list[Any]) -> tuple[list[list[Any]], list[list[Any]]]:
    flags, params = [], []
    for option in feature_registry.options_of(features):
        if option.takes_value:
            params.append([option.name, None, None, option.help])
        else:
            flags.append([option.name, None, option.help])
    return flags, params


_DISCOVERY = feature_registry.discover()
_FEATURE_FLAGS, _FEATURE_PARAMS = _feature_switches(list(_DISCOVERY.features))


class Options(usage.Options):
    synopsis = "[--config FILE | --autoconf] [--loglevel LEVEL] [feature switches]"
    longdesc = (
        "Run a Yggdrasil node. --config reads a yggdrasil 0.4.7 (HJSON or JSON) config "
        "file, with Popura's sections if wanted; --autoconf runs with a fresh identity and "
        "defaults, like yggdrasil -autoconf."
    )
    optFlags = [
        ["autoconf", None, "Run with a generated config (new keys, defaults)."],
        *_FEATURE_FLAGS,
    ]
    optParameters = [
        ["config", "c", None, "Config file (yggdrasil 0.4.7 HJSON/JSON)."],
        ["useconffile", None, None, "Same as --config, yggdrasil's spelling."],
        *_FEATURE_PARAMS,
    ]

    discovery = _DISCOVERY
    log_level: LogLevel = logs.LEVELS[logs.DEFAULT]

    def opt_loglevel(self, name: str) -> None:
        """Log level: error, warn, info (the default), debug or trace."""
        try:
            self.log_level = logs.level_named(name)
        except ValueError as e:
            raise usage.UsageError(str(e)) from None

    def postOptions(self) -> None:
        path = self["config"] or self["useconffile"]
        if path and self["autoconf"]:
            raise usage.UsageError("give --config FILE or --autoconf, not both")
        if not path and not self["autoconf"]:
            raise usage.UsageError("give --config FILE (or --autoconf for a fresh identity)")
        try:
            if path:
                self.node_config, self.config_warnings = node_config.load(path)
            else:
                self.node_config, self.config_warnings = node_config.generate(), []
        except ConfigError as e:
            raise config_error(e, path or "autoconf") from None
        self.config_file = reloadable(path)
        self.feature_options = {
            option.name: self[option.name] if option.takes_value else True
            for option in feature_registry.options_of(self.discovery.features)
            if self[option.name]
        }


def makeService(options: Options, reactor: Any = None) -> Any:
    if reactor is None:
        from twisted.internet import reactor
    from ygg.service import Node

    try:
        node = Node(
            options.node_config,
            reactor,
            feature_options=options.feature_options,
            discovery=options.discovery,
            warnings=options.config_warnings,
            config_path=getattr(options, "config_file", None),
        )
    except ConfigError as e:
        raise config_error(e, options["config"] or options["useconffile"] or "autoconf") from None
    twistd_options = getattr(options, "parent", None)
    if twistd_options is None:  # ``ygg run`` or a test: the caller owns logging and signals
        return node
    stop_on_signals(reactor)
    reload_on_signal(reactor, node.reload)
    observer = None
    if not twistd_options.get("logger"):  # twistd's --logger wins over the component
        observer = logs.filtered(logs.twistd_observer(twistd_options, reactor), options.log_level)
    return _TwistdRoot(node, observer, reactor)


class _TwistdRoot(MultiService):
    """What twistd runs: the node, under a parent that gives twistd its log observer.

    twistd starts logging right after it has put this service into its application, to the
    application's ``ILogObserver`` component when there is one.
    """

    def __init__(self, node: Any, observer: ILogObserver | None, reactor: Any) -> None:
        super().__init__()
        self.observer = observer
        self.reactor = reactor
        node.setName("node")
        node.setServiceParent(self)

    def setServiceParent(self, parent: Any) -> None:
        if self.observer is not None and hasattr(parent, "setComponent"):  # an Application
            parent.setComponent(ILogObserver, self.observer)
        super().setServiceParent(parent)

    def startService(self) -> None:
        super().startService()
        heap.release_when_running(self.reactor)
