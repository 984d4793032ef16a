"""The node: a MultiService composed from the configuration, and the INode facade of it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger, LogLevel
from zope.interface import implementer

from ygg import address as addr
from ygg import features as feature_registry
from ygg.admin.json_socket import AdminListenError, AdminSocketService
from ygg.admin.methods import builtin_registry
from ygg.config import NodeConfig
from ygg.core.core import IPV6_MTU, BaseCore, Core
from ygg.core.nodeinfo import build_node_info
from ygg.core.proto import BaseProtoHandler, ProtoHandler, first_answer
from ygg.errors import ConfigError, YggError
from ygg.featurehost import FeatureHost, FeatureNode
from ygg.interfaces import AdminError, INode, Method, PeerSummary
from ygg.ipv6.layer import IPv6Layer
from ygg.ipv6.networks import Network, Network04, Network05
from ygg.links.manager import Links
from ygg.links.multicast import Multicast
from ygg.links.netutil import resolve_dial_address
from ygg.links.probe import probe_handshake
from ygg.links.uri import parse_peer_uri
from ygg.links.versions import V04, V05
from ygg.reloader import FeatureHosting, Reloader
from ygg.runtimestate import RuntimePeers, RuntimeState, split_peers
from ygg.tun.device import TunError, TunService
from ygg.v05.core import Core as Core05
from ygg.v05.network.router import Router as Router05
from ygg.v05.proto import ProtoHandler as ProtoHandler05

log = Logger(namespace="ygg")

#: INode.probe_peer's default: the handshake deadline of a link.
PROBE_TIMEOUT = 6.0


@implementer(INode)
class Node(MultiService):
    """One Yggdrasil node.  Children start in the order the Go node starts its parts."""

    def __init__(
        self,
        config: NodeConfig,
        reactor: Any,
        *,
        feature_options: Mapping[str, Any] | None = None,
        discovery: feature_registry.Discovery | None = None,
        warnings: list[str] | None = None,
        config_path: str | None = None,
    ) -> None:
        """``config_path``: the file the config was read from, which a reload reads again
        and beside which runtime peers are kept (None: stdin, autoconf, a test)."""
        super().__init__()
        self.reactor = reactor
        key = config.key
        if not key.seed_matches_public():
            raise ConfigError("PrivateKey", "the public key half does not belong to the seed half")
        self.node_key = key
        self.public_key = key.public
        self.address = addr.address_for_key(key.public)
        self.subnet = addr.subnet_for_key(key.public)
        self._warnings = list(warnings or ())
        found = feature_registry.discover() if discovery is None else discovery
        self._available = found.features
        #: feature name -> why it is off (failed to load, to build or to start).
        self._failed = {f.name: f.reason for f in found.failures}
        self._warnings += found.notes
        self._hosts: dict[str, FeatureHost] = {}
        self._sections: dict[str, Any] = {}
        self._feature_options = dict(feature_options or {})
        self.config_path = config_path
        #: Peers added and removed at runtime, applied on top of the config.
        self.runtime, notes = RuntimePeers.open(config_path)
        self._warnings += notes
        # The layers, each given its collaborators here.  The cores deliver up into layers
        # that send down through them, and the TUN and the IPv6 layer feed each other:
        # those loops are closed by the small forwarding methods below.
        versions = config.protocol_versions
        node_info = build_node_info(config.node_info, config.node_info_privacy)
        # v0.4's core runs even when v0.4 is off (no link then joins it): the admin API
        # reads its router.
        self.core = Core(
            key,
            reactor,
            deliver_ipv6=self._ipv6_message,
            deliver_proto=self._proto_message,
            deliver_oob=self._oob_message,
        )
        self.router = self.core.router
        self.proto = ProtoHandler(
            self._send_proto,
            reactor,
            key.public,
            node_info,
            self.router.get_self,
            lambda: [p.key for p in self.router.get_peers()],
            lambda: [d.key for d in self.router.get_dht()],
            IPV6_MTU,
        )
        networks: list[Network] = []
        #: Per running network, v0.4 first: its core and proto handler, for INode's asks.
        self._askers: list[tuple[Network, BaseCore, BaseProtoHandler]] = []
        self.net04: Network04 | None = None
        if V04 in versions:
            self.net04 = Network04(self.core, key, found=self._found04)
            networks.append(self.net04)
            self._askers.append((self.net04, self.core, self.proto))
        # v0.5's core beside it, with the same key; links join the router of the version
        # they speak.  None of it exists when v0.5 is off.
        self._v05_tree: tuple[bytes, tuple[int, ...]] | None = None
        self._v05_tree_check: Any = None
        self.core05: Core05 | None = None
        self.router05: Router05 | None = None
        self.proto05: ProtoHandler05 | None = None
        self.net05: Network05 | None = None
        if V05 in versions:
            self.core05 = core05 = Core05(
                key,
                reactor,
                deliver_ipv6=self._ipv6_message05,
                deliver_proto=self._proto_message05,
                path_notify=self._found05,
                tree_notify=self._v05_tree_changed,
                group_password=config.group_password or None,
            )
            self.router05 = router05 = core05.router
            self.proto05 = ProtoHandler05(
                self._send_proto05,
                reactor,
                key.public,
                node_info,
                lambda: router05.get_self().routing_entries,
                lambda: [p.key for p in router05.get_peers()],
                lambda: [t.key for t in router05.get_tree()],
            )
            self.net05 = Network05(core05)
            networks.append(self.net05)
            self._askers.append((self.net05, core05, self.proto05))
        # The TUN's MTU is capped by the network carrying the largest packets (0.5's cap
        # once v0.5 runs); a packet too big for the network it goes over gets a Packet
        # Too Big from the IPv6 layer.
        self.tun = TunService(
            self._from_tun,
            self.address,
            config.if_name,
            config.if_mtu,
            reactor,
            max_mtu=max(n.mtu for n in networks),
        )
        self.ipv6 = IPv6Layer(key, reactor, networks, output=self.tun)
        peers, interface_peers = split_peers(self.runtime.state.apply(config))
        self.links = Links(
            reactor,
            self.router,
            key,
            listen=config.listen,
            peers=peers,
            interface_peers=interface_peers,
            allowed_public_keys=config.allowed_public_keys,
            router05=self.router05,
            versions=config.protocol_versions,
        )
        self.links.setServiceParent(self)
        multicast = Multicast(self.links, config.multicast_interfaces)
        multicast.setServiceParent(self)
        self.admin = builtin_registry()
        # Holds the running config and the multicast service, which a reload replaces.
        self._reloader = Reloader(
            self,
            config,
            config_path,
            self.runtime,
            self.links,
            [p for p in (self.proto, self.proto05) if p is not None],
            multicast,
            FeatureHosting(
                self._available,
                self._feature_options,
                self._hosts,
                self._feature_host,
                self._host_feature,
                self._unhost_feature,
            ),
        )
        if config.admin_listen not in ("none", ""):
            AdminSocketService(self, self.admin, config.admin_listen, reactor).setServiceParent(
                self
            )
        if config.admin_amp.listen:
            from ygg.admin.amp import AdminAMPService

            AdminAMPService(self, self.admin, config.admin_amp.listen, reactor).setServiceParent(
                self
            )
        if config.admin_shell.listen:
            from ygg.admin.shell import AdminShellService  # conch, imported only when on

            AdminShellService(self, self.admin, config.admin_shell, reactor).setServiceParent(self)
        #: The Prometheus endpoint (ygg.metrics.service.MetricsService), None when off.
        self.metrics: Any = None
        if config.metrics.enable:
            from ygg.metrics.service import MetricsService  # prometheus_client: only when on

            self.metrics = MetricsService(self, config.metrics, reactor)
            self.metrics.setServiceParent(self)
        self.tun.setServiceParent(self)
        self._add_features(self._feature_options)

    @property
    def config(self) -> NodeConfig:
        """The running config: the file's as the last reload applied it."""
        return self._reloader.config

    @property
    def multicast(self) -> Multicast:
        """The multicast service (a reload may replace it)."""
        return self._reloader.multicast

    # -- composition ------------------------------------------------------------------

    def _add_features(self, feature_options: Mapping[str, Any]) -> None:
        claimed = {f.section.lower() for f in self._available}
        for section in self.config.extra:
            if section.lower() not in claimed:
                self._warnings.append(f"unknown config key {section!r} ignored")
        for feature in self._available:
            # A bad setting is the user's error and stops the node (ConfigError), as any
            # config error does; anything else the feature raises turns only it off.
            section = feature_registry.feature_config(
                feature, self.config, feature_options, self._warnings
            )
            if not feature_registry.is_enabled(section):
                continue
            host = self._feature_host(feature.name, section)
            if host is not None:
                self._host_feature(host, section)

    def _feature_host(self, name: str, section: Any) -> FeatureHost | None:
        """An enabled feature's host, or None when building it failed (said once; a
        ConfigError, the user's, is raised)."""
        (feature,) = [f for f in self._available if f.name == name]
        view = FeatureNode(self, name, self.admin)
        try:
            return FeatureHost(name, feature.makeService(view, section), view)
        except ConfigError:
            raise
        except Exception as e:
            self._failed[name] = feature_registry.describe(e)
            log.error(
                "Feature {feature} failed to start: {reason}; it is off",
                feature=name,
                reason=self._failed[name],
            )
            log.failure("Feature {feature}", feature=name, level=LogLevel.debug)
            view.drop_owned()
            return None

    def _host_feature(self, host: FeatureHost, section: Any) -> None:
        host.setServiceParent(self)
        self._hosts[host.feature] = host
        self._sections[host.feature] = section
        self._failed.pop(host.feature, None)

    def _unhost_feature(self, name: str) -> Deferred[None] | None:
        del self._sections[name]
        return self._hosts.pop(name).disownServiceParent()

    def _from_tun(self, packet: bytes) -> None:
        self.ipv6.send(packet)

    def _ipv6_message(self, source: bytes, message: bytes) -> None:
        if self.net04 is not None:
            self.ipv6.receive(self.net04, source, message)

    def _ipv6_message05(self, source: bytes, message: bytes) -> None:
        if self.net05 is not None:
            self.ipv6.receive(self.net05, source, message)

    def _proto_message(self, source: bytes, message: bytes) -> None:
        self.proto.handle(source, message)

    def _proto_message05(self, source: bytes, message: bytes) -> None:
        if self.proto05 is not None:
            self.proto05.handle(source, message)

    def _oob_message(self, source: bytes, dest: bytes, data: bytes) -> None:
        if self.net04 is not None:
            self.net04.handle_oob(source, dest, data)

    def _found04(self, key: bytes) -> None:
        if self.net04 is not None:
            self.ipv6.learn(key, self.net04)

    def _found05(self, key: bytes) -> None:
        if self.net05 is not None:
            self.ipv6.learn(key, self.net05)

    def _v05_tree_changed(self) -> None:
        # Coalesced: many infos change in one tick, and the router is mid-update here.
        if self._v05_tree_check is None:
            self._v05_tree_check = self.reactor.callLater(0, self._v05_log_tree)

    def _v05_log_tree(self) -> None:
        self._v05_tree_check = None
        router = self.router05
        if router is None or router.closed:
            return
        me = router.get_self()
        state = (me.root, me.coords)
        if state != self._v05_tree:
            self._v05_tree = state
            log.debug(
                "v0.5 tree: root {root}, coords {coords}",
                root=me.root.hex(),
                coords=list(me.coords),
            )

    def _send_proto(self, dest: bytes, message: bytes) -> None:
        _send_proto_on(self.core, dest, message)

    def _send_proto05(self, dest: bytes, message: bytes) -> None:
        if self.core05 is not None:
            _send_proto_on(self.core05, dest, message)

    # -- asking other nodes -----------------------------------------------------------

    def _protos_for(self, key: bytes, version: str | None = None) -> list[BaseProtoHandler]:
        """Whom to ask about ``key``: the network ``version`` when given (AdminError if
        it does not run), else the network that reaches it (the IPv6 layer's choice,
        else one holding a session with it), or every network the node runs (the first
        answer wins).  Our own key is answered by the first network."""
        askers = self._askers
        if version is not None:
            for network, _, proto in askers:
                if network.name == version:
                    return [proto]
            raise AdminError(f"the node does not run v{version}")
        if key == self.public_key:
            return [askers[0][2]]
        known = self.ipv6.network_of(key)
        for network, core, proto in askers:
            if network is known or (known is None and core.has_session(key)):
                return [proto]
        return [proto for _, _, proto in askers]

    def drop_counts(self) -> dict[str, Any]:
        """Packets and messages dropped, by layer and reason, per network (plain data)."""
        counts: dict[str, Any] = {"tun": dict(self.tun.drops), "ipv6": dict(self.ipv6.drops)}
        if self.net04 is not None:
            counts["0.4"] = {
                "core": dict(self.core.drops),
                "sessions": dict(self.core.sessions.drops),
                "ipv6": dict(self.net04.drops),
            }
        if self.core05 is not None and self.net05 is not None:
            counts["0.5"] = {
                "core": dict(self.core05.drops),
                "sessions": dict(self.core05.sessions.drops),
                "ipv6": dict(self.net05.drops),
                "untracked": self.core05.router.untracked_dropped,
            }
        return counts

    # -- INode ------------------------------------------------------------------------

    def features(self) -> list[str]:
        return [name for name, host in self._hosts.items() if host.failure is None]

    def feature_config(self, name: str) -> Any:
        return self._sections.get(name) if name in self.features() else None

    def feature_status(self) -> dict[str, str]:
        """Every installed feature: "on", "off" or "failed: <reason>"."""
        status = {f.name: "off" for f in self._available}
        for name, host in self._hosts.items():
            status[name] = "on" if host.failure is None else f"failed: {host.failure}"
        status.update({name: f"failed: {reason}" for name, reason in self._failed.items()})
        return dict(sorted(status.items()))

    def tun_enabled(self) -> bool:
        return self.tun.enabled

    def versions(self) -> tuple[str, ...]:
        return tuple(network.name for network, _, _ in self._askers)

    def register_admin_method(self, method: Method) -> bool:
        return FeatureNode(self, "ygg", self.admin).register_admin_method(method)

    def unregister_admin_method(self, name: str) -> None:
        self.admin.unregister(name, "ygg")

    def call_admin(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        return self.admin.call(self, name, arguments)

    def register_metrics(self, collector: Any) -> bool:
        return FeatureNode(self, "ygg", self.admin).register_metrics(collector)

    def unregister_metrics(self, collector: Any) -> None:
        FeatureNode(self, "ygg", self.admin).unregister_metrics(collector)

    def peers(self) -> list[PeerSummary]:
        """The links that are up, v0.4's then v0.5's (each network numbers its ports)."""
        infos = [(V04, info) for info in self.router.get_peers()]
        if self.router05 is not None:
            infos += [(V05, info) for info in self.router05.get_peers()]
        rows = []
        for version, info in infos:
            link = info.link.stats()
            rows.append(
                PeerSummary(info.key, link.remote, link.inbound, link.uptime, info.port, version)
            )
        return rows

    def configured_peers(self) -> list[tuple[str, str]]:
        return list(self.links.persistent)

    def call_peer(self, uri: str, interface: str = "", version: str | None = None) -> Any:
        return self.links.call(uri, interface, speak=version).addCallback(lambda _: None)

    def probe_peer(self, uri: str, version: str, timeout: float = PROBE_TIMEOUT) -> Any:
        parsed = parse_peer_uri(uri)
        return probe_handshake(
            self.reactor,
            parsed,
            version,
            self.node_key,
            timeout=timeout,
            # Made (pyOpenSSL loaded) only for a TLS probe, as for a link.
            certificate=self.links.certificate_for(parsed.scheme),
        )

    def resolve_dial_address(self, host: str) -> Any:
        return resolve_dial_address(self.reactor, host, YggError)

    def get_node_info(self, key: bytes, version: str | None = None) -> Any:
        return self._first_answer(key, version, lambda p: p.get_node_info(key))

    def remote_get_self(self, key: bytes, version: str | None = None) -> Any:
        return self._first_answer(key, version, lambda p: p.ask_self(key))

    def remote_get_peers(self, key: bytes, version: str | None = None) -> Any:
        return self._first_answer(key, version, lambda p: p.ask_peers(key))

    def remote_get_dht(self, key: bytes, version: str | None = None) -> Any:
        # A v0.5 node has no DHT: it answers the same request with its tree's keys.
        return self._first_answer(key, version, lambda p: p.ask_dht(key))

    def remote_get_tree(self, key: bytes) -> Any:
        # The same request as getDHT's; only a v0.5 node calls it getTree.
        return self._first_answer(key, V05, lambda p: p.ask_dht(key))

    def _first_answer(
        self, key: bytes, version: str | None, ask: Callable[[BaseProtoHandler], Any]
    ) -> Any:
        try:
            protos = self._protos_for(key, version)
        except AdminError as e:
            return fail(e)
        return first_answer([ask(p) for p in protos])

    # -- reload and runtime peers (ygg.reloader) --------------------------------------

    def reload(self) -> Deferred[str]:
        """Read the config file again and apply what changed; fires with the summary
        line, or fails with ReloadError (said in one line) and the node as it was.
        Reloads run one at a time."""
        return self._reloader.reload()

    def remember_peer(self, uri: str, interface: str, added: bool) -> None:
        """Keep an addPeer (``added``) or removePeer across restarts."""
        self._reloader.remember_peer(uri, interface, added)

    def clear_runtime_state(self) -> RuntimeState:
        """Forget the runtime peer changes, and run the config's peers again."""
        return self._reloader.clear_runtime_state()

    # -- IService ---------------------------------------------------------------------

    def startService(self) -> None:
        for warning in self._warnings:
            log.warn("Config: {warning}", warning=warning)
        self.ipv6.start()
        try:
            super().startService()
        except (AdminListenError, TunError) as e:
            # As yggdrasil: a node whose admin socket or TUN cannot be set up does not run.
            log.error("{error}", error=str(e))
            print(f"ygg: {e}", file=sys.stderr)
            raise SystemExit(1) from None
        # twistd starts services before the reactor runs; log once it does, so that when
        # these lines appear the node is up and SIGTERM is handled.
        self.reactor.callWhenRunning(self._announce)

    def _announce(self) -> None:
        log.info(
            "Features: {features}",
            features=", ".join(f"{name} ({state})" for name, state in self.feature_status().items())
            or "none installed",
        )
        log.info("Your public key is {key}", key=self.public_key.hex())
        log.info("Your IPv6 address is {address}", address=addr.format_address(self.address))
        log.info("Your IPv6 subnet is {subnet}", subnet=addr.format_subnet(self.subnet))

    def stopService(self) -> Any:
        log.info("Stopping...")
        d = super().stopService()

        def stopped(_: Any) -> None:
            self.ipv6.stop()
            self.core.close()
            if self.core05 is not None:
                self.core05.close()
            if self._v05_tree_check is not None and self._v05_tree_check.active():
                self._v05_tree_check.cancel()
            log.info("Stopped")

        return d.addCallback(stopped)


def _send_proto_on(core: BaseCore, dest: bytes, message: bytes) -> None:
    try:
        core.send(dest, message)
    except ValueError as e:  # an oversized reply: not sent, as Go's WriteTo refuses it
        log.debug("Protocol message to {key} not sent: {error}", key=dest.hex(), error=e)
