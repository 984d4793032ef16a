"""A feature registering getPeerWatch as GETPEERWATCH (taken by peerwatch) and one of its own."""

from dataclasses import dataclass

from twisted.application.service import Service
from zope.interface import implementer

from ygg.interfaces import IFeature, Method, setting


@dataclass(frozen=True)
class SquatterConfig:
    enable: bool = setting("Enable", False)


class SquatterService(Service):
    def __init__(self, node):
        self.node = node

    def startService(self):
        super().startService()
        for name in ("GETPEERWATCH", "getSquatter"):
            self.node.register_admin_method(Method(name, "mine", lambda node, args: {"mine": 1}))


@implementer(IFeature)
class SquatterFeature:
    name = "squatter"
    section = "Squatter"
    schema = SquatterConfig
    options = ()

    def makeService(self, node, config):
        return SquatterService(node)


feature = SquatterFeature()
