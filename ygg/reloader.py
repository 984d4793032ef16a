"""Applying a reload (a ``ygg.reload.Plan``) to the running layers, and the runtime peers.

The ``Reloader`` holds the running config and the multicast service (both replaced by a
reload); the node is given them through it.  Hosting a feature stays composition, done by
the node: the reloader is handed the node's feature hosting as ``FeatureHosting``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.application.service import IServiceCollection
from twisted.internet.defer import Deferred, DeferredLock, fail, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from ygg import config as node_config
from ygg import reload as config_reload
from ygg.config import NodeConfig
from ygg.core.nodeinfo import build_node_info
from ygg.core.proto import BaseProtoHandler
from ygg.errors import ConfigError, YggError
from ygg.featurehost import FeatureHost
from ygg.links.manager import Links
from ygg.links.multicast import Multicast
from ygg.runtimestate import PeerEntry, RuntimePeers, RuntimeState

log = Logger(namespace="ygg")


@dataclass(frozen=True)
class FeatureHosting:
    """The node's features as a reload sees them, and the node's acts on them."""

    #: The installed features (``ygg.features``), and the command line's options for them.
    installed: Sequence[Any]
    overrides: Mapping[str, Any]
    #: Feature name -> its running host (the node's, read only here).
    running: Mapping[str, FeatureHost]
    #: A feature's host built from its section, or None when building it failed.
    build: Callable[[str, Any], FeatureHost | None]
    #: Start a built host under the node.
    host: Callable[[FeatureHost, Any], None]
    #: Stop a running feature; fires when it has stopped.
    stop: Callable[[str], Deferred[Any] | None]


class Reloader:
    """Reads the config file again and applies what changed, one reload at a time."""

    def __init__(
        self,
        parent: IServiceCollection,
        config: NodeConfig,
        config_path: str | None,
        runtime: RuntimePeers,
        links: Links,
        protos: Sequence[BaseProtoHandler],
        multicast: Multicast,
        features: FeatureHosting,
    ) -> None:
        """``parent``: the node, which a replaced multicast service joins; ``protos``: the
        proto handlers of the networks that run (their NodeInfo is replaced)."""
        self._parent = parent
        self.config = config
        self._path = config_path
        self._runtime = runtime
        self._links = links
        self._protos = tuple(protos)
        self.multicast = multicast
        self._features = features
        self._lock = DeferredLock()

    def reload(self) -> Deferred[str]:
        """Read the config file again and apply what changed; fires with the summary
        line, or fails with ReloadError (said in one line) and the node as it was."""
        return self._lock.run(self._reload).addErrback(_unexpected)

    def _reload(self) -> Deferred[str]:
        path = self._path
        if path is None:
            return _reload_refused("the config did not come from a file, so there is none to read")
        features = self._features
        try:
            new, warnings = node_config.load(path)
            plan = config_reload.plan(
                self.config,
                new,
                state=self._runtime.state,
                features=features.installed,
                overrides=features.overrides,
                running=features.running,
            )
            info, hosts = self._prepare(plan)
        except ConfigError as e:
            return _reload_refused(f"{path}: {e}")
        for warning in (*warnings, *plan.warnings):
            log.warn("Config: {warning}", warning=warning)
        for name in plan.refused:
            log.warn("{line}", line=config_reload.refusal(name))
        return self._apply(plan, info, hosts)

    def _prepare(
        self, plan: config_reload.Plan
    ) -> tuple[bytes | None, dict[str, FeatureHost | None]]:
        """What can still fail as the user's error, done before anything changes: the
        NodeInfo, the new URIs, the features' services."""
        cfg = plan.config
        info = build_node_info(cfg.node_info, cfg.node_info_privacy) if plan.node_info else None
        config_reload.check_uris(plan, self._links.check_password)
        hosts = {
            c.name: self._features.build(c.name, c.section)
            for c in plan.features
            if c.action != "stop"
        }
        return info, hosts

    def _apply(
        self,
        plan: config_reload.Plan,
        info: bytes | None,
        hosts: dict[str, FeatureHost | None],
    ) -> Deferred[str]:
        self.config = plan.config
        if info is not None:
            for proto in self._protos:
                proto.node_info = info
        closed = 0
        if plan.allowed_public_keys:
            closed = self._links.set_allowed_public_keys(plan.config.allowed_public_keys)
        self._change_peers(plan.remove_peers, plan.add_peers)
        # What listens or runs stops first, so that what replaces it can take its port.
        stopping = [self._links.remove_listener(text) for text in plan.remove_listen]
        multicast = self.multicast
        if plan.multicast:
            self.multicast = Multicast(self._links, plan.config.multicast_interfaces)
            stopping.append(multicast.disownServiceParent())
        for change in plan.features:
            if change.name in self._features.running:
                stopping.append(self._features.stop(change.name))

        def start(_: Any) -> str:
            for text in plan.add_listen:
                self._links.add_listener(text)
            if self.multicast is not multicast:
                self.multicast.setServiceParent(self._parent)
            failed = []
            for name, host in hosts.items():
                section = next(c.section for c in plan.features if c.name == name)
                if host is not None:
                    self._features.host(host, section)
                if host is None or host.failure is not None:
                    failed.append(name)
            line = config_reload.summary(plan, closed=closed, failed=failed)
            log.info("{summary}", summary=line)
            return line

        waiting = gatherResults([d for d in stopping if d is not None], consumeErrors=True)
        return waiting.addBoth(start)

    def _change_peers(self, remove: tuple[PeerEntry, ...], add: tuple[PeerEntry, ...]) -> None:
        for uri, interface in remove:
            try:
                self._links.remove_peer(uri, interface)
            except YggError:
                pass  # never configured: its URI was refused at start
        for uri, interface in add:
            try:
                self._links.add_peer(uri, interface)
            except YggError as e:
                log.error("Failed to add peer {uri}: {error}", uri=uri, error=str(e))

    def remember_peer(self, uri: str, interface: str, added: bool) -> None:
        """Keep an addPeer (``added``) or removePeer across restarts."""
        if added:
            self._runtime.peer_added((uri, interface), self.config)
        else:
            self._runtime.peer_removed((uri, interface), self.config)

    def clear_runtime_state(self) -> RuntimeState:
        """Forget the runtime peer changes, and run the config's peers again: peers added
        at runtime are removed, config peers removed at runtime come back.  Returns what
        was forgotten."""
        before = self._runtime.state.apply(self.config)
        cleared = self._runtime.clear()
        after = self._runtime.state.apply(self.config)
        remove = tuple(p for p in before if p not in after)
        add = tuple(p for p in after if p not in before)
        self._change_peers(remove, add)
        log.info(
            "Runtime peers cleared: {removed} removed, {added} back from the config",
            removed=len(remove),
            added=len(add),
        )
        return cleared


def _unexpected(failure: Failure) -> Failure:
    if not failure.check(config_reload.ReloadError):
        log.failure("Reload failed part way", failure)
    return failure


def _reload_refused(reason: str) -> Deferred[str]:
    log.error("Reload failed: {reason}; nothing changed", reason=reason)
    return fail(config_reload.ReloadError(reason))
