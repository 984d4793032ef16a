"""The public plugin API of ygg: everything a feature (built-in or third-party) may use.

A feature is an object providing ``IFeature``, named by an entry point in the group
``ygg.features`` of its distribution (see docs/plugins.md).  The node loads it at start
and, when the feature's config section enables it, calls ``makeService(node, section)``
with an ``INode``.  That facade, the types below and the small helper modules
``ygg.address``, ``ygg.errors``, ``ygg.gojson`` and ``ygg.adminclient`` are the whole API:
a feature must not import the node's other modules, which may change at any release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zope.interface import Attribute, Interface

from ygg.config import NodeConfig, load_config, setting
from ygg.errors import ConfigError, DecodeError, ProbeError, YggError

__all__ = [
    "AdminError",
    "Arg",
    "Command",
    "ConfigError",
    "DecodeError",
    "FeatureOption",
    "IFeature",
    "INode",
    "Method",
    "NodeConfig",
    "PeerSummary",
    "ProbeError",
    "YggError",
    "format_config",
    "load_config",
    "setting",
]


@dataclass(frozen=True)
class FeatureOption:
    """A command-line switch of a feature, setting one key of its config section.

    ``--NAME`` (and yggdrasil-style ``-NAME``) sets ``key`` to true, or to the value given
    when ``takes_value`` is set (``--NAME VALUE``).
    """

    name: str
    key: str
    help: str
    takes_value: bool = False


@dataclass(frozen=True)
class Command:
    """A subcommand a feature adds to the ``ygg`` command line: ``ygg NAME ARGS…``.

    ``run(argv)`` gets the arguments after the name and returns the exit status.  Keep the
    feature's module cheap to import: import what the command needs inside ``run``.
    ``go_flag`` also accepts yggdrasil's single-dash spelling ``ygg … -NAME …``, in which
    case ``run`` gets the whole command line.
    """

    name: str
    help: str
    run: Callable[[list[str]], int]
    go_flag: bool = False


# --------------------------------------------------------------------------- admin methods


class AdminError(YggError):
    """A method's error; ``str(e)`` is what the client is told (yggdrasilctl prints it)."""


# --------------------------------------------------------------------------- probes


@dataclass(frozen=True)
class Arg:
    """An argument of an admin method."""

    name: str
    #: "string", "bool" or "number": the JSON type the argument must have.
    kind: str = "string"
    help: str = ""


Handler = Callable[[Any, dict[str, Any]], Any]


@dataclass(frozen=True)
class Method:
    """One admin method, answered on every front door (JSON socket, AMP, SSH shell)."""

    name: str  # e.g. "getPeers"; matched case-insensitively, listed lower-case
    description: str  # what ``list`` shows
    handler: Handler  # (node, arguments) -> plain data, or a Deferred of it
    args: tuple[Arg, ...] = ()
    #: The Go request type, for decode error texts ("… Go struct field AddPeerRequest.uri …").
    go_request: str = ""
    #: Shown by the SSH shell's help (the yggdrasilctl description is ``description``).
    help: str = ""
    #: Which key of the reply holds the rows a table shows (e.g. "peers").
    table: str | None = None

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def fields(self) -> list[str]:
        return [arg.name for arg in self.args]


# --------------------------------------------------------------------------- interfaces


class IFeature(Interface):
    """An optional part of the node, off unless its config section enables it.

    Two attributes are optional (the node reads them when they are there):
    ``description``, a few lines about the section that ``ygg genconf`` writes above it,
    and ``commands``, a sequence of ``Command``: the feature's ``ygg`` subcommands.
    """

    name = Attribute("Short name, e.g. 'autopeer'; shown in the start-up log.")
    section = Attribute("Name of its top-level config section, e.g. 'Autopeering'.")
    schema = Attribute(
        "Frozen dataclass type of that section (fields made with ygg.interfaces.setting), "
        "with a boolean field 'enable' read from the key 'Enable'."
    )
    options = Attribute("Sequence of FeatureOption: its command-line switches.")

    def makeService(node: INode, config: object):
        """Return an IService that runs the feature; started and stopped with the node."""


class INode(Interface):
    """The node as a feature sees it."""

    reactor = Attribute("The reactor the node runs on (IReactorTime, IReactorTCP, …).")
    config = Attribute("The node's NodeConfig (yggdrasil's own keys), read-only.")
    public_key = Attribute("32-byte ed25519 public key (bytes).")
    address = Attribute("16-byte 200::/7 address (bytes).")
    subnet = Attribute("8-byte prefix of the 300::/64 subnet (bytes).")

    def features():
        """Names of the features running on this node."""

    def feature_config(name):
        """The parsed config section (its schema's dataclass) of the running feature
        ``name``, or None when that feature is not running."""

    def tun_enabled():
        """Whether the node's TUN is up (so 200::/7 on this host leads into the mesh)."""

    def versions():
        """The protocol versions the node runs, oldest first: a tuple of "0.4" and/or
        "0.5" (its ``ProtocolVersions``).  Each is a network of its own: a link speaks one
        of them, and so does every question asked of another node."""

    def register_admin_method(method):
        """Add a ``Method`` to the admin API (all three front doors).

        Returns True, or False when the name (compared case-insensitively) is taken by the
        node or another feature; the node then logs one line naming both and the method is
        not added.  A feature's methods are removed when its service stops, so registering
        them in ``startService`` is right for a service that may be started again."""

    def unregister_admin_method(name):
        """Remove one of this feature's own admin methods (others' are left alone)."""

    def call_admin(name, arguments=None):
        """Run an admin method by name (as the front doors do); Deferred of its reply."""

    # -- metrics ----------------------------------------------------------------------------

    def register_metrics(collector):
        """Add ``collector`` to the node's Prometheus endpoint (docs/metrics.md).

        ``collector`` is a prometheus_client collector: an object whose ``collect()``
        returns metric families (``prometheus_client.core.CounterMetricFamily`` and the
        like), called on the reactor's thread at each scrape and never otherwise.  Name
        the families ``ygg_<feature name>_…``; others are left out (logged once).  Returns
        True, or False when the node serves no metrics (its ``Metrics`` section is off),
        in which case nothing is kept.  A feature's collectors are removed when its
        service stops; one that raises is left out of that scrape, logged once."""

    def unregister_metrics(collector):
        """Remove a collector this feature registered (others' are left alone)."""

    # -- peers ------------------------------------------------------------------------------

    def peers():
        """The links that are up, as a list of ``PeerSummary``."""

    def configured_peers():
        """The peers the node keeps connected (Peers, InterfacePeers, added by addPeer),
        as (uri, interface) pairs."""

    def call_peer(uri, interface="", version=None):
        """Dial ``uri`` once (not kept up when it drops, as yggdrasil's CallPeer).  Deferred
        that fires when the link passed its handshake, or fails with the reason (the Go
        node's error text).  Raises ``YggError`` for a bad URI.

        ``version`` ("0.4", "0.5"): on a node running both, write that version's handshake
        at once instead of waiting for the remote's; a remote that answers in the other
        version still gets a link of its version (see ``probe_peer`` to know first)."""

    def probe_peer(uri, version, timeout=6.0):
        """Deferred of the seconds from dialling ``uri`` to the remote's handshake of
        ``version`` ("0.4" or "0.5"), read whole and checked as a link checks it (the v0.5
        signature and ``?password=``, the ``?key=`` pins).

        The probe dials as a link would (tcp, tls with its TLS handshake, unix, socks, ws,
        quic…; a host name is resolved first, untimed), writes our handshake of
        ``version`` at once, reads the remote's and closes: it joins no network, and the
        remote sees a link come and go.  It works for either version whichever the node
        runs.  Fails with ``ProbeError`` (its ``kind``: refused version, wrong key, not a
        Yggdrasil handshake, timeout after ``timeout`` seconds, unreachable).  Raises
        ``YggError`` for a URI the node cannot dial and ``ValueError`` for another
        version."""

    def resolve_dial_address(host):
        """Deferred of the IP address (text) a dial to host name ``host`` goes to, as the
        node's links choose it; fails with ``YggError`` when the name has no address."""

    # -- asking other nodes -------------------------------------------------------------------
    #
    # Each question goes over the sessions of one network.  With ``version=None`` the node
    # asks the network that reaches the key (the one its IPv6 traffic goes over, else one
    # holding a session with it), or every network it runs, the first answer winning.
    # With ``version="0.4"`` or ``"0.5"`` it asks that network alone (a crawler walking
    # one network); a version the node does not run fails with ``AdminError``.

    def get_node_info(key, version=None):
        """Deferred of the NodeInfo (a dict) of the node with this 32-byte key; fails with
        ``AdminError("Timed out waiting for response")`` after 6 s."""

    def remote_get_self(key, version=None):
        """Deferred of a remote node's debug getSelf: ``{"key": hex, "coords": "[1 2]"}``
        (a v0.5 node: ``{"key": hex, "routing_entries": "5"}``); fails with
        ``AdminError("timeout")`` after 6 s, as the other remote requests do."""

    def remote_get_peers(key, version=None):
        """Deferred of the list of 32-byte keys of a remote node's peers (a v0.5 node
        lists a key once per link)."""

    def remote_get_dht(key, version=None):
        """Deferred of the list of 32-byte keys of a remote node's DHT neighbours (a v0.5
        node, which has no DHT: the keys of its tree)."""

    def remote_get_tree(key):
        """Deferred of the list of 32-byte keys of the tree infos a remote v0.5 node
        holds (its debug getTree), asked over v0.5; ``AdminError`` when v0.5 is off."""


@dataclass(frozen=True)
class PeerSummary:
    """One link that is up, as features see it."""

    key: bytes
    remote: str  # the link's name: the dialled URI, or tcp://ip:port for inbound
    inbound: bool
    uptime: float
    port: int  # each network numbers its own ports
    #: The protocol version the link speaks: "0.4" or "0.5" ("" where unknown).
    version: str = ""


def format_config(config: NodeConfig, *, json: bool = False) -> str:
    """The config as ``ygg normaliseconf`` prints it: HJSON (or JSON), defaults filled in,
    every installed feature's section normalised by its schema."""
    from ygg import features

    return features.format_config(config, json=json)
