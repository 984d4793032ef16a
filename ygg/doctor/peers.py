"""The peer checks of ``ygg doctor``: each configured peer dialled with a real handshake of a
version the node runs, all at once, each within its own timeout.

A probe (``ygg.links.probe``) dials as a link would, writes our handshake and reads the
peer's, then closes: it joins no network.  It uses a throwaway key, so that a node already
running with this config keeps its own links to the peer.  On a node running both
versions, v0.5 is tried first (two ygg nodes speak it; a password or quic allows only it)
and v0.4 after a peer that answers in v0.4.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.python.failure import Failure

from ygg.config import NodeConfig
from ygg.doctor.check import FAIL, OK, SKIP, Check
from ygg.errors import ProbeError, YggError
from ygg.links.uri import LinkURIError, PeerURI, parse_peer_uri
from ygg.links.versions import V04, V05, versions_for

#: A probe: (uri, version, timeout) -> Deferred of the seconds to the peer's handshake.
Probe = Callable[[PeerURI, str, float], Deferred]
TIMEOUT = 6.0
_V05_ONLY = frozenset(("quic",))

_FIXES = {
    ProbeError.UNREACHABLE: "check the host, the port and any firewall between, and that the "
    "peer runs",
    ProbeError.TIMEOUT: "the peer took the connection but sent no handshake: check the "
    "scheme (tls:// or tcp://) and the port",
    ProbeError.KEY: "the ?key= in the URI does not match the peer's key: update it, or drop it",
    ProbeError.HANDSHAKE: "check the scheme, the port and ?password= (it must be the peer's)",
}


def real_probe(reactor: Any) -> Probe:
    """Probes on ``reactor`` with one throwaway key and certificate for them all."""
    from ygg.keys import NodeKey
    from ygg.links.probe import probe_handshake

    key = NodeKey.generate()
    certificate: list[Any] = []

    def probe(uri: PeerURI, version: str, timeout: float) -> Deferred:
        if uri.scheme in ("tls", "wss", "sockstls", "quic") and not certificate:
            from ygg.links.tls import make_certificate

            certificate.append(make_certificate(key))
        cert = certificate[0] if certificate else None
        return probe_handshake(reactor, uri, version, key, timeout=timeout, certificate=cert)

    return probe


def configured(cfg: NodeConfig) -> list[tuple[str, str]]:
    """(uri, interface) of every configured peer, Peers first."""
    found = [(text, "") for text in cfg.peers]
    for interface, uris in cfg.interface_peers.items():
        found += [(text, interface) for text in uris]
    return found


def check_peers(
    cfg: NodeConfig | None, probe: Probe, timeout: float = TIMEOUT
) -> Deferred[list[Check]]:
    """A Check per configured peer, in the config's order, once every probe has ended."""
    if cfg is None:
        return succeed([])
    targets = configured(cfg)
    if not targets:
        return succeed([Check("peers", SKIP, "no Peers or InterfacePeers configured")])
    running = [_check_peer(cfg, text, interface, probe, timeout) for text, interface in targets]
    return DeferredList(running, consumeErrors=True).addCallback(
        lambda results: [
            check if ok else _crashed(text, check)
            for (ok, check), (text, _) in zip(results, targets, strict=True)
        ]
    )


def _crashed(text: str, failure: Failure) -> Check:
    return Check("peer", FAIL, f"{text}: the probe failed: {failure.getErrorMessage()}")


def _check_peer(
    cfg: NodeConfig, text: str, interface: str, probe: Probe, timeout: float
) -> Deferred[Check]:
    what = f"{text} (via {interface})" if interface else text
    try:
        uri = parse_peer_uri(text)
    except LinkURIError as e:
        return succeed(
            Check("peer", FAIL, f"{what}: {e}; the node ignores it", "correct the URI in Peers")
        )
    versions = _versions(cfg, uri)
    if not versions:
        return succeed(
            Check(
                "peer",
                FAIL,
                f"{what}: {uri.scheme} is v0.5 only and ProtocolVersions has no 0.5",
                'add "0.5" to ProtocolVersions, or use a tls:// or tcp:// URI',
            )
        )
    if interface and uri.zone == "" and _link_local(uri):
        return succeed(
            Check(
                "peer",
                SKIP,
                f"{what}: a link-local peer is dialled through {interface}, which the "
                "probe cannot do; not checked",
            )
        )
    return _try(what, uri, versions, probe, timeout, cfg.protocol_versions)


def _versions(cfg: NodeConfig, uri: PeerURI) -> list[str]:
    """The versions a link to ``uri`` may speak, in the order to try them."""
    allowed = versions_for(cfg.protocol_versions, uri.link_password.encode())
    if uri.scheme in _V05_ONLY:
        allowed = allowed & {V05}
    return [v for v in (V05, V04) if v in allowed]


def _try(
    what: str,
    uri: PeerURI,
    versions: list[str],
    probe: Probe,
    timeout: float,
    running: tuple[str, ...],
) -> Deferred[Check]:
    version, rest = versions[0], versions[1:]
    try:
        probing = probe(uri, version, timeout)
    except (YggError, ValueError) as e:
        return succeed(Check("peer", FAIL, f"{what}: {e}", "correct the URI in Peers"))

    def answered(seconds: float) -> Check:
        return Check("peer", OK, f"{what}: v{version} handshake in {seconds * 1000:.1f} ms")

    def failed(failure: Failure) -> Any:
        error = failure.value
        if not isinstance(error, ProbeError):
            return failure
        if error.kind == ProbeError.VERSION and rest:
            return _try(what, uri, rest, probe, timeout, running)
        if error.kind == ProbeError.VERSION:
            return Check(
                "peer", FAIL, f"{what}: refuses our version: {error}", _version_fix(running)
            )
        return Check("peer", FAIL, f"{what}: {error}", _FIXES.get(error.kind, ""))

    return probing.addCallbacks(answered, failed)


def _version_fix(running: tuple[str, ...]) -> str:
    other = [v for v in (V04, V05) if v not in running]
    if not other:
        return "the peer speaks a version ygg does not: use another peer"
    return (
        f'the peer runs only v{other[0]}: add "{other[0]}" to ProtocolVersions (ygg runs '
        f"both at once), or use a v{running[0]} peer"
    )


def _link_local(uri: PeerURI) -> bool:
    from ygg.links.netutil import is_link_local_unicast, parse_ip

    return parse_ip(uri.host) is not None and is_link_local_unicast(uri.host)
