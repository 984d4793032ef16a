"""The node's metrics, read from its own state at each scrape (docs/metrics.md lists them).

Every number here is one the node keeps anyway — the links' byte and frame counts, the
routers' tables, the layers' drop counters, the admin registry's request counts — so a
scrape costs a walk over the peers and a few ``len()``s, and the packet path pays nothing
for it.  Label values are bounded: reasons come from short fixed lists, methods from the
registry (an unknown name is ``unknown``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from ygg import __version__
from ygg import address as addr
from ygg.links.versions import V04, V05

PEER_LABELS = ("key", "remote", "version", "inbound")
#: Upper bounds of the link RTT histogram, seconds (loopback to a long satellite hop).
RTT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def rtt_buckets(samples: list[float]) -> list[tuple[str, float]]:
    """Cumulative counts of ``samples`` per bucket bound, +Inf last."""
    buckets = [(repr(bound), float(sum(1 for s in samples if s <= bound))) for bound in RTT_BUCKETS]
    return [*buckets, ("+Inf", float(len(samples)))]


class NodeCollector:
    """A prometheus_client collector of one ``ygg.service.Node``."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        yield from self._identity()
        yield from self._peers()
        yield from self._links()
        yield from self._networks()
        yield from self._drops()
        yield from self._admin()

    # -- who we are -----------------------------------------------------------------------

    def _identity(self) -> Iterator[Metric]:
        node = self.node
        info = InfoMetricFamily("ygg_node", "This node: its key, address, subnet and build.")
        info.add_metric(
            [],
            {
                "key": node.public_key.hex(),
                "address": addr.format_address(node.address),
                "subnet": addr.format_subnet(node.subnet),
                "build_version": __version__,
                "protocols": ",".join(node.versions()),
            },
        )
        yield info

    # -- each link that is up -------------------------------------------------------------

    def _peers(self) -> Iterator[Metric]:
        node = self.node
        received = CounterMetricFamily(
            "ygg_peer_received_bytes", "Bytes read from a peer's link.", labels=PEER_LABELS
        )
        sent = CounterMetricFamily(
            "ygg_peer_sent_bytes", "Bytes written to a peer's link.", labels=PEER_LABELS
        )
        frames_in = CounterMetricFamily(
            "ygg_peer_received_packets", "Frames read from a peer's link.", labels=PEER_LABELS
        )
        frames_out = CounterMetricFamily(
            "ygg_peer_sent_packets", "Frames written to a peer's link.", labels=PEER_LABELS
        )
        uptime = GaugeMetricFamily(
            "ygg_peer_uptime_seconds", "Seconds since the link came up.", labels=PEER_LABELS
        )
        rtt = GaugeMetricFamily(
            "ygg_peer_rtt_seconds",
            "The link's last measured round trip (v0.5 links, once measured).",
            labels=PEER_LABELS,
        )
        cost = GaugeMetricFamily(
            "ygg_peer_cost", "The link's cost in the v0.5 tree (v0.5 links).", labels=PEER_LABELS
        )
        samples: dict[str, list[float]] = {V04: [], V05: []}
        infos = [(V04, info) for info in node.router.get_peers()]
        if node.router05 is not None:
            infos += [(V05, info) for info in node.router05.get_peers()]
        for version, info in infos:
            stats = info.link.stats()
            labels = [info.key.hex(), stats.remote, version, _bool(stats.inbound)]
            received.add_metric(labels, stats.bytes_recvd)
            sent.add_metric(labels, stats.bytes_sent)
            frames_in.add_metric(labels, stats.packets_recvd)
            frames_out.add_metric(labels, stats.packets_sent)
            uptime.add_metric(labels, stats.uptime)
            if version == V05:
                cost.add_metric(labels, info.cost)
                if info.latency:
                    rtt.add_metric(labels, info.latency)
                    samples[V05].append(info.latency)
        yield from (received, sent, frames_in, frames_out, uptime, rtt, cost)
        # A gauge histogram: how the links up now spread over RTT (not a count of
        # measurements over time, which the routers do not keep).
        histogram = GaugeHistogramMetricFamily(
            "ygg_link_rtt_seconds",
            "Links up now, by their last measured round trip (v0.5 links).",
            labels=("version",),
        )
        for version in node.versions():
            if version == V05:
                values = samples[version]
                histogram.add_metric([version], rtt_buckets(values), sum(values))
        yield histogram

    # -- links coming and going -----------------------------------------------------------

    def _links(self) -> Iterator[Metric]:
        events = self.node.links.events
        up = CounterMetricFamily(
            "ygg_links_up",
            "Links that passed their handshake.",
            labels=("version", "inbound"),
        )
        for (version, inbound), count in sorted(events.up.items()):
            up.add_metric([version, _bool(inbound)], count)
        down = CounterMetricFamily(
            "ygg_links_down",
            "Links that were up and ended, by reason (closed: the remote closed it; "
            "error: the connection broke; timeout, protocol, key, removed, stopping: we "
            "closed it).",
            labels=("version", "inbound", "reason"),
        )
        for (version, inbound, reason), count in sorted(events.down.items()):
            down.add_metric([version, _bool(inbound), reason], count)
        failed = CounterMetricFamily(
            "ygg_links_failed",
            "Connections that ended before their handshake passed, by reason (version, key, "
            "password, malformed, timeout, closed, duplicate, redial, refused, removed, "
            "stopping).",
            labels=("version", "inbound", "reason"),
        )
        for (version, inbound, reason), count in sorted(events.failed.items()):
            failed.add_metric([version, _bool(inbound), reason], count)
        yield from (up, down, failed)

    # -- each network's tables ------------------------------------------------------------

    def _networks(self) -> Iterator[Metric]:
        node = self.node
        sessions = GaugeMetricFamily(
            "ygg_sessions", "Encrypted sessions held.", labels=("network",)
        )
        pending = GaugeMetricFamily(
            "ygg_sessions_pending",
            "Sessions made from an init whose remote has not yet sent traffic.",
            labels=("network",),
        )
        paths = GaugeMetricFamily(
            "ygg_paths", "Paths to other nodes the pathfinder holds.", labels=("network",)
        )
        tree = GaugeMetricFamily(
            "ygg_tree_entries",
            "Tree entries held (v0.4: the peers' announcements; v0.5: every node's info).",
            labels=("network",),
        )
        depth = GaugeMetricFamily(
            "ygg_tree_depth", "Hops from the tree's root to this node.", labels=("network",)
        )
        dht = GaugeMetricFamily("ygg_dht_entries", "DHT entries held (v0.4).", labels=("network",))
        blooms = GaugeMetricFamily(
            "ygg_bloom_filters", "Peers' bloom filters held (v0.5).", labels=("network",)
        )
        bits = GaugeMetricFamily(
            "ygg_bloom_bits_set",
            "Bits set in the union of our own and the on-tree peers' bloom filters, of 8192 "
            "(v0.5).",
            labels=("network",),
        )
        if node.net04 is not None:
            router, core = node.router, node.core
            sessions.add_metric([V04], len(core.sessions.sessions()))
            pending.add_metric([V04], core.sessions.pending)
            paths.add_metric([V04], len(router.get_paths()))
            tree.add_metric([V04], len(router.get_peers()))
            depth.add_metric([V04], len(router.get_self().coords))
            dht.add_metric([V04], len(router.get_dht()))
        if node.core05 is not None:
            router, core = node.router05, node.core05
            me = router.get_self()
            sessions.add_metric([V05], len(core.sessions.sessions()))
            pending.add_metric([V05], core.sessions.pending)
            paths.add_metric([V05], len(router.get_paths()))
            tree.add_metric([V05], me.routing_entries)
            depth.add_metric([V05], len(me.coords))
            states = router.blooms.states
            union = router.blooms.own
            for state in states.values():
                if state.on_tree:
                    union |= state.recv
            blooms.add_metric([V05], len(states))
            bits.add_metric([V05], union.bit_count())
        yield from (sessions, pending, paths, tree, depth, dht, blooms, bits)

    # -- what was dropped -----------------------------------------------------------------

    def _drops(self) -> Iterator[Metric]:
        drops = CounterMetricFamily(
            "ygg_drops",
            "Packets and messages dropped, by layer, network and reason.",
            labels=("layer", "network", "reason"),
        )
        counts = self.node.drop_counts()
        for layer in ("tun", "ipv6"):
            for reason, count in sorted(counts.get(layer, {}).items()):
                drops.add_metric([layer, "", reason], count)
        for network in (V04, V05):
            for layer, value in counts.get(network, {}).items():
                if isinstance(value, int):  # a single counter: its name is its reason
                    drops.add_metric(["router", network, layer], value)
                    continue
                for reason, count in sorted(value.items()):
                    drops.add_metric([layer, network, reason], count)
        yield drops

    # -- the admin API --------------------------------------------------------------------

    def _admin(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "ygg_admin_requests",
            "Admin requests by method, front door (json, amp, shell, node) and result.",
            labels=("method", "door", "result"),
        )
        for (method, door, result), count in sorted(self.node.admin.requests.items()):
            requests.add_metric([method, door, result], count)
        yield requests
