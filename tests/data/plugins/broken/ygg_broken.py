"""A feature whose makeService raises."""

from dataclasses import dataclass

from zope.interface import implementer

from ygg.interfaces import IFeature, setting


@dataclass(frozen=True)
class BrokenConfig:
    enable: bool = setting("Enable", False)


@implementer(IFeature)
class BrokenFeature:
    name = "broken"
    section = "Broken"
    schema = BrokenConfig
    options = ()

    def makeService(self, node, config):
        raise RuntimeError("the broken plugin cannot start")


feature = BrokenFeature()
