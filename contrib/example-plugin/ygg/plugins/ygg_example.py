"""An example third-party feature: greets at start and says goodbye at stop.

Enable it with a config section ``Example { Enable: true, Greeting: "hello" }`` or the
command-line switch ``--example``.  It sees the node only through ``ygg.interfaces.INode``.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.plugin import IPlugin
from zope.interface import implementer

from ygg.config import setting
from ygg.interfaces import FeatureOption, IFeature, INode

log = Logger(namespace="example")


@dataclass(frozen=True)
class ExampleConfig:
    enable: bool = setting("Enable", False)
    greeting: str = setting("Greeting", "hello")


class ExampleService(Service):
    def __init__(self, node: INode, config: ExampleConfig) -> None:
        self.node = node
        self.config = config

    def startService(self) -> None:
        super().startService()
        log.info(
            "example feature: {greeting} from {key}",
            greeting=self.config.greeting,
            key=self.node.public_key.hex(),
        )

    def stopService(self) -> None:
        log.info("example feature: goodbye")
        return super().stopService()


@implementer(IPlugin, IFeature)
class ExampleFeature:
    name = "example"
    section = "Example"
    schema = ExampleConfig
    options = (
        FeatureOption("example", "Enable", "Enable the example feature."),
        FeatureOption("examplegreeting", "Greeting", "What it says at start.", takes_value=True),
    )

    def makeService(self, node: INode, config: ExampleConfig) -> ExampleService:
        return ExampleService(node, config)


example = ExampleFeature()
