"""What a reload changes: the difference between the running config and the file, as data.

``plan`` compares two ``NodeConfig``s (the running one and the file read again) and says
what to add, remove, restart and refuse; it touches nothing, so it is tested without a
reactor.  ``ygg.reloader`` applies the plan to the running node.

Live keys (applied without a restart): Peers and InterfacePeers (only the entries that
changed: links of the others are untouched), Listen, MulticastInterfaces,
AllowedPublicKeys (inbound links of keys no longer allowed are closed), NodeInfo and
NodeInfoPrivacy, LogLookups (read and ignored anyway), and the features' sections (a
changed feature is restarted, a newly enabled one started, a disabled one stopped).

Every other key is fixed while the node runs: the key (PrivateKey/PublicKey), IfName and
IfMTU (the TUN), ProtocolVersions (the routing cores), GroupPassword (v0.5's sessions),
AdminListen, AdminAMP and AdminShell (the admin doors, which a reload may come in
through), Metrics, and any key added to ``NodeConfig`` later until it is made live here.
A change to one is refused with one line and the running value kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ygg import features as feature_registry
from ygg.config import NodeConfig
from ygg.errors import ConfigError, YggError
from ygg.links.uri import LinkURIError, parse_listen_uri, parse_peer_uri
from ygg.runtimestate import PeerEntry, RuntimeState

#: The config-file keys a reload applies.
LIVE = frozenset(
    (
        "Peers",
        "InterfacePeers",
        "Listen",
        "MulticastInterfaces",
        "AllowedPublicKeys",
        "NodeInfo",
        "NodeInfoPrivacy",
        "LogLookups",
    )
)
#: The key's two halves are refused as one.
KEY_FIELDS = ("private_key", "public_key")


class ReloadError(YggError):
    """A reload that changed nothing: no file to read, or the file has an error."""


@dataclass(frozen=True)
class FeatureChange:
    name: str
    #: "start", "stop" or "restart".
    action: str
    #: The feature's new section (None when it stops).
    section: Any = None


@dataclass(frozen=True)
class Plan:
    """What a reload does.  ``config`` is what the node runs afterwards: the new file's,
    with the refused keys at their running values."""

    config: NodeConfig
    add_peers: tuple[PeerEntry, ...] = ()
    remove_peers: tuple[PeerEntry, ...] = ()
    add_listen: tuple[str, ...] = ()
    remove_listen: tuple[str, ...] = ()
    multicast: bool = False
    allowed_public_keys: bool = False
    node_info: bool = False
    features: tuple[FeatureChange, ...] = ()
    #: Config-file names of the keys that changed but cannot change live.
    refused: tuple[str, ...] = ()
    #: Lines about the new file (unknown keys…), as at start.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        """Whether the plan changes anything (refusals change nothing)."""
        return bool(
            self.add_peers
            or self.remove_peers
            or self.add_listen
            or self.remove_listen
            or self.multicast
            or self.allowed_public_keys
            or self.node_info
            or self.features
        )


def plan(
    old: NodeConfig,
    new: NodeConfig,
    *,
    state: RuntimeState | None = None,
    features: Sequence[Any] = (),
    overrides: Mapping[str, Any] | None = None,
    running: Iterable[str] = (),
) -> Plan:
    """The reload from ``old`` (running) to ``new`` (the file read again).

    ``state``: the runtime peer changes, kept on top of both; ``features``: the installed
    features (IFeature); ``overrides``: their command-line options, which still win;
    ``running``: the features the node hosts now.  A feature's section that does not parse
    raises ConfigError, as at start (the node then changes nothing).
    """
    state = state or RuntimeState()
    if "PrivateKey" not in new.present and "PrivateKey" not in old.present:
        # Neither file has a key: the node made one at start, and reading the file again
        # made another.  The running one stays, without a word.
        new = dataclasses.replace(new, private_key=old.private_key, public_key=old.public_key)
    refused, kept = _refused(old, new)
    after = dataclasses.replace(new, **kept)

    old_peers, new_peers = state.apply(old), state.apply(after)
    old_listen, new_listen = dict.fromkeys(old.listen), dict.fromkeys(after.listen)
    warnings: list[str] = []
    changes = tuple(_features(old, after, features, overrides or {}, set(running), warnings))
    claimed = {f.section.lower() for f in features}
    warnings += [
        f"unknown config key {s!r} ignored" for s in after.extra if s.lower() not in claimed
    ]
    return Plan(
        after,
        add_peers=tuple(p for p in new_peers if p not in old_peers),
        remove_peers=tuple(p for p in old_peers if p not in new_peers),
        add_listen=tuple(t for t in new_listen if t not in old_listen),
        remove_listen=tuple(t for t in old_listen if t not in new_listen),
        multicast=old.multicast_interfaces != after.multicast_interfaces,
        allowed_public_keys=set(old.allowed_public_keys) != set(after.allowed_public_keys),
        node_info=(old.node_info, old.node_info_privacy)
        != (after.node_info, after.node_info_privacy),
        features=changes,
        refused=refused,
        warnings=tuple(warnings),
    )


def _refused(old: NodeConfig, new: NodeConfig) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The keys that changed and may not (file names), and their running values by field."""
    refused: list[str] = []
    kept: dict[str, Any] = {}
    for f in dataclasses.fields(NodeConfig):
        name = f.metadata.get("key")
        if name is None or name in LIVE or getattr(old, f.name) == getattr(new, f.name):
            continue
        kept[f.name] = getattr(old, f.name)
        if f.name in KEY_FIELDS:
            name = "PrivateKey"  # one line for the key, whichever half changed
        if name not in refused:
            refused.append(name)
    if any(name in kept for name in KEY_FIELDS):  # both halves stay together
        kept.update({name: getattr(old, name) for name in KEY_FIELDS})
    return tuple(refused), kept


def _features(
    old: NodeConfig,
    new: NodeConfig,
    features: Sequence[Any],
    overrides: Mapping[str, Any],
    running: set[str],
    warnings: list[str],
) -> Iterable[FeatureChange]:
    for feature in features:
        before = feature_registry.feature_config(feature, old, overrides)
        after = feature_registry.feature_config(feature, new, overrides, warnings)
        if before == after:
            continue  # the same settings: left as it is, running, off or failed
        on, hosted = feature_registry.is_enabled(after), feature.name in running
        if on:
            yield FeatureChange(feature.name, "restart" if hosted else "start", after)
        elif hosted:
            yield FeatureChange(feature.name, "stop")


def check_uris(plan: Plan, check: Callable[..., None]) -> None:
    """ConfigError for a peer or Listen URI the plan adds and the links would refuse
    (``check``: ``Links.check_password``), so that a reload does nothing rather than half."""
    for uri, interface in plan.add_peers:
        try:
            check(parse_peer_uri(uri))
        except LinkURIError as e:
            raise ConfigError("InterfacePeers" if interface else "Peers", f"{uri}: {e}") from None
    for text in plan.add_listen:
        try:
            check(parse_listen_uri(text), listen=True)
        except LinkURIError as e:
            raise ConfigError("Listen", f"{text}: {e}") from None


def refusal(name: str) -> str:
    """The line said for a key a reload cannot change."""
    what = "the node's key" if name == "PrivateKey" else name
    return f"Reload: {what} cannot change while the node runs; keeping the running value"


def summary(
    plan: Plan, *, closed: int = 0, failed: Sequence[str] = (), errors: Sequence[str] = ()
) -> str:
    """The one line a reload logs: ``Reload: +1 peer, -1 peer, NodeInfo changed, feature
    meshname restarted`` or ``Reload: no change``.  ``closed``: links closed for
    AllowedPublicKeys; ``failed``: features that failed to start; ``errors``: peers or
    listeners the links refused."""
    parts = []
    added = len(plan.add_peers)
    removed = len(plan.remove_peers)
    if added:
        parts.append(f"+{_count(added, 'peer')}")
    if removed:
        parts.append(f"-{_count(removed, 'peer')}")
    if plan.add_listen:
        parts.append(f"+{_count(len(plan.add_listen), 'listener')}")
    if plan.remove_listen:
        parts.append(f"-{_count(len(plan.remove_listen), 'listener')}")
    if plan.multicast:
        parts.append("MulticastInterfaces changed")
    if plan.allowed_public_keys:
        extra = f" ({_count(closed, 'link')} closed)" if closed else ""
        parts.append(f"AllowedPublicKeys changed{extra}")
    if plan.node_info:
        parts.append("NodeInfo changed")
    done = {"start": "started", "stop": "stopped", "restart": "restarted"}
    for change in plan.features:
        state = "failed to start" if change.name in failed else done[change.action]
        parts.append(f"feature {change.name} {state}")
    parts += [f"{name} refused (restart to apply)" for name in plan.refused]
    parts += list(errors)
    return "Reload: " + (", ".join(parts) if parts else "no change")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
