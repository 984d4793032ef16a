"""Running a feature so that what goes wrong in it stays in it.

Each enabled feature gets its own view of the node (``FeatureNode``: the ``INode`` facade,
owning the admin methods the feature registers) and its service runs inside a
``FeatureHost``: an exception from its ``startService`` or ``stopService`` is one error line
naming the feature (the traceback at debug level), the feature is off, its admin methods
are gone, and the node runs on.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg.admin.registry import BUILTIN, MethodTaken, Registry
from ygg.features import describe
from ygg.interfaces import INode, Method

log = Logger(namespace="ygg")

_INODE_NAMES = frozenset(INode.names(all=True))


@implementer(INode)
class FeatureNode:
    """The node as the feature ``owner`` sees it: INode only, its admin methods its own."""

    def __init__(self, node: Any, owner: str, registry: Registry) -> None:
        self._node = node
        self._owner = owner
        self._registry = registry

    def __getattr__(self, name: str) -> Any:
        # Only the facade: a feature reaching for the node's internals gets an error.
        if name in _INODE_NAMES:
            return getattr(self._node, name)
        raise AttributeError(f"INode has no attribute {name!r}")

    def register_admin_method(self, method: Method) -> bool:
        try:
            self._registry.register(method, self._owner)
        except MethodTaken as e:
            holder = "the node itself" if e.owner == BUILTIN else f"feature {e.owner}"
            log.error(
                "Feature {feature}: admin method {method} refused: the name is taken by {holder}",
                feature=self._owner,
                method=method.name,
                holder=holder,
            )
            return False
        return True

    def unregister_admin_method(self, name: str) -> None:
        self._registry.unregister(name, self._owner)

    def drop_admin_methods(self) -> None:
        for key in self._registry.owned_by(self._owner):
            self._registry.unregister(key, self._owner)

    def register_metrics(self, collector: Any) -> bool:
        metrics = self._node.metrics
        if metrics is None:
            return False
        metrics.features.add(collector, self._owner)
        return True

    def unregister_metrics(self, collector: Any) -> None:
        if self._node.metrics is not None:
            self._node.metrics.features.remove(collector, self._owner)

    def drop_owned(self) -> None:
        """Remove what the feature added to the node: admin methods, metrics."""
        self.drop_admin_methods()
        if self._node.metrics is not None:
            self._node.metrics.features.remove_owner(self._owner)


class FeatureHost(Service):
    """A child of the node that runs one feature's service and keeps its failures in."""

    def __init__(self, feature: str, service: Any, view: FeatureNode) -> None:
        if not IService.providedBy(service):
            raise TypeError(f"makeService returned {service!r}, not an IService")
        self.setName(f"feature:{feature}")
        self.feature = feature
        self.service = service
        self.view = view
        #: None while all is well, else why the feature is off.
        self.failure: str | None = None

    def startService(self) -> None:
        super().startService()
        try:
            self.service.startService()
        except Exception as e:
            self._failed(e)

    def _failed(self, error: BaseException) -> None:
        self.failure = describe(error)
        log.error(
            "Feature {feature} failed to start: {reason}; it is off",
            feature=self.feature,
            reason=self.failure,
        )
        log.failure("Feature {feature} failed to start", feature=self.feature, level=LogLevel.debug)
        self.view.drop_owned()
        if self.service.running:  # release what it did start, if it can
            maybeDeferred(self.service.stopService).addErrback(self._debug)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self.failure is not None:
            return None
        stopping = maybeDeferred(self.service.stopService)

        def failed(failure: Failure) -> None:
            log.error(
                "Feature {feature} failed to stop cleanly: {reason}",
                feature=self.feature,
                reason=describe(failure.value),
            )
            self._debug(failure)

        def done(_: Any) -> None:
            self.view.drop_owned()

        return stopping.addErrback(failed).addCallback(done)

    def _debug(self, failure: Failure) -> None:
        log.failure("Feature {feature}", failure, LogLevel.debug, feature=self.feature)
