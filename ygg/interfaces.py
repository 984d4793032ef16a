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

    def register_admin_method(method):
        """Add a ``ygg.admin.registry.Method`` to the admin API (all three front doors)."""
