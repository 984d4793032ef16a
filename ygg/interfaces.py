"""The zope interfaces of ygg: what plugins see of the node, and what a feature provides.

A plugin (a module in the ``ygg.plugins`` namespace, ours or a third party's) holds a
module-level object providing ``twisted.plugin.IPlugin`` and ``IFeature``.  The node finds
it with ``twisted.plugin.getPlugins`` at start-up and, when the feature's config section
enables it, calls ``makeService(node, section)`` with an ``INode``.  That facade is all a
plugin may touch: it must not import the node's internals.
"""

from __future__ import annotations

from dataclasses import dataclass

from zope.interface import Attribute, Interface


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


class IFeature(Interface):
    """An optional part of the node, off unless its config section enables it."""

    name = Attribute("Short name, e.g. 'autopeer'; shown in the start-up log.")
    section = Attribute("Name of its top-level config section, e.g. 'Autopeering'.")
    schema = Attribute(
        "Frozen dataclass type of that section (fields made with ygg.config.setting), "
        "with a boolean field 'enable' read from the key 'Enable'."
    )
    options = Attribute("Sequence of FeatureOption: its command-line switches.")

    def makeService(node: INode, config: object):
        """Return an IService that runs the feature; started and stopped with the node."""


class INode(Interface):
    """The node as plugins see it."""

    reactor = Attribute("The reactor the node runs on (IReactorTime, IReactorTCP, …).")
    config = Attribute("The whole ygg.config.NodeConfig, read-only.")
    public_key = Attribute("32-byte ed25519 public key (bytes).")
    address = Attribute("16-byte 200::/7 address (bytes).")
    subnet = Attribute("8-byte prefix of the 300::/64 subnet (bytes).")

    def features():
        """Names of the features running on this node."""

    def tun_enabled():
        """Whether the node's TUN is up (so 200::/7 on this host leads into the mesh)."""

    def register_admin_method(method):
        """Add a ``ygg.admin.registry.Method`` to the admin API (all three front doors)."""

    def call_admin(name, arguments=None):
        """Run an admin method by name (as the front doors do); Deferred of its reply."""

    # -- peers ------------------------------------------------------------------------------

    def peers():
        """The links that are up, as a list of ``PeerSummary``."""

    def configured_peers():
        """The peers the node keeps connected (Peers, InterfacePeers, added by addPeer),
        as (uri, interface) pairs."""

    def call_peer(uri, interface=""):
        """Dial ``uri`` once (not kept up when it drops, as yggdrasil's CallPeer).  Deferred
        that fires when the link passed its handshake, or fails with the reason (the Go
        node's error text).  Raises ``ygg.links.uri.LinkURIError`` for a bad URI."""

    # -- asking other nodes -------------------------------------------------------------------

    def get_node_info(key):
        """Deferred of the NodeInfo (a dict) of the node with this 32-byte key; fails with
        ``ygg.admin.registry.AdminError("Timed out waiting for response")`` after 6 s."""

    def remote_get_self(key):
        """Deferred of a remote node's debug getSelf: ``{"key": hex, "coords": "[1 2]"}``."""

    def remote_get_peers(key):
        """Deferred of the list of 32-byte keys of a remote node's peers."""

    def remote_get_dht(key):
        """Deferred of the list of 32-byte keys of a remote node's DHT neighbours."""


@dataclass(frozen=True)
class PeerSummary:
    """One link that is up, as plugins see it."""

    key: bytes
    remote: str  # the link's name: the dialled URI, or tcp://ip:port for inbound
    inbound: bool
    uptime: float
    port: int
