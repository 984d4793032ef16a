"""The one place an admin method lives: a function of the node returning plain data.

The JSON socket (yggdrasilctl's), AMP and the SSH shell only translate requests into
``Registry.call`` and its results into their own form.  Method names are matched
case-insensitively and listed lower-case, as yggdrasil does; arguments are checked against
the method's declared fields with the error texts Go's decoder gives.

A few builtin methods are not the same on every node: getDHT is v0.4's, getTree v0.5's,
and a node running both versions takes a ``version`` argument on the methods whose reply
differs (``ygg.admin.forms``).  Those are registered as variants, each with the ``Gate``
of the nodes it serves; ``lookup``, ``call`` and ``list_entries`` pick the node's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.python.failure import Failure

from ygg.admin.forms import Gate, node_versions
from ygg.interfaces import AdminError, Arg, Method

__all__ = ["BUILTIN", "AdminError", "Arg", "Method", "MethodTaken", "Registry"]

#: The owner of the node's own methods.
BUILTIN = "ygg"
#: The front doors, as ``call`` counts requests: the JSON socket, AMP, the SSH shell, and
#: the node itself (``INode.call_admin``: features, commands run in process).
DOORS = ("json", "amp", "shell", "node")
#: The method label of a request for a name the node does not have.
UNKNOWN = "unknown"
#: The ``go_request`` of a method whose Go handler reads no arguments at all (``list``):
#: whatever the request carries is ignored.
NO_REQUEST = "-"


class MethodTaken(Exception):
    """A method name (compared case-insensitively) that another owner registered first."""

    def __init__(self, method: Method, owner: str) -> None:
        super().__init__(method.name, owner)
        self.method = method
        self.owner = owner


_JSON_KIND = {"string": str, "bool": bool, "number": (int, float)}


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _go_type_name(method: Method) -> tuple[str, str]:
    """The package and name of the method's Go request type (``admin``, ``AddPeerRequest``)."""
    struct = method.go_request or f"{method.name[0].upper()}{method.name[1:]}Request"
    package, _, name = struct.rpartition(".")
    return package or "admin", name


@dataclass
class Registry:
    methods: dict[str, Method] = field(default_factory=dict)
    #: Who registered each method (by key): BUILTIN or a feature's name.
    owners: dict[str, str] = field(default_factory=dict)
    #: Methods that differ between kinds of node: key -> (gate, method) variants.
    variants: dict[str, list[tuple[Gate, Method]]] = field(default_factory=dict)
    #: Requests answered, by (method key or UNKNOWN, door, "ok" or "error"): metrics.
    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: Methods answered but not listed (ygg's own beside the Go node's ``list``).
    unlisted: set[str] = field(default_factory=set)

    def register(
        self, method: Method, owner: str = BUILTIN, gate: Gate | None = None, listed: bool = True
    ) -> None:
        """Add a method (a variant for the nodes ``gate`` admits, when given; left out of
        ``list`` unless ``listed``); MethodTaken when its name is taken (the first owner
        keeps it)."""
        key = method.key
        taken = key in self.methods or (
            key in self.variants and (gate is None or self.owners[key] != owner)
        )
        if taken:
            raise MethodTaken(method, self.owners[key])
        if gate is None:
            self.methods[key] = method
        else:
            self.variants.setdefault(key, []).append((gate, method))
        self.owners[key] = owner
        if not listed:
            self.unlisted.add(key)

    def unregister(self, name: str, owner: str | None = None) -> bool:
        """Remove a method (only if ``owner`` registered it, when given); whether it was."""
        key = name.lower()
        if key not in self.owners or (owner is not None and self.owners[key] != owner):
            return False
        self.methods.pop(key, None)
        self.variants.pop(key, None)
        self.unlisted.discard(key)
        del self.owners[key]
        return True

    def owned_by(self, owner: str) -> list[str]:
        return [key for key, who in self.owners.items() if who == owner]

    def lookup(self, name: str, node: Any = None) -> Method | None:
        """The method of this name that ``node`` has (None: a node running v0.4 only)."""
        key = name.lower()
        method = self.methods.get(key)
        if method is not None or key not in self.variants:
            return method
        versions = node_versions(node)
        return next((m for gate, m in self.variants[key] if gate.admits(versions)), None)

    def for_node(self, node: Any = None) -> list[Method]:
        """Every listed method ``node`` has, sorted by name."""
        found = (self.lookup(key, node) for key in self.owners if key not in self.unlisted)
        return sorted((m for m in found if m is not None), key=lambda m: m.key)

    def __iter__(self):
        return iter(self.for_node())

    def check_arguments(self, method: Method, arguments: Any) -> dict[str, Any]:
        """The arguments as the handler gets them; unknown ones are ignored, as in Go."""
        if method.go_request == NO_REQUEST:
            return {}
        package, struct = _go_type_name(method)
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise AdminError(
                f"json: cannot unmarshal {_go_type(arguments)} into Go value of type "
                f"{package}.{struct}"
            )
        checked: dict[str, Any] = {}
        for arg in method.args:
            if arg.name not in arguments:
                continue
            value = arguments[arg.name]
            if value is None:
                continue
            if not isinstance(value, _JSON_KIND[arg.kind]) or (
                arg.kind != "bool" and isinstance(value, bool)
            ):
                raise AdminError(
                    f"json: cannot unmarshal {_go_type(value)} into Go struct field "
                    f"{struct}.{arg.name} of type {arg.kind}"
                )
            checked[arg.name] = value
        return checked

    def call(
        self, node: Any, name: str, arguments: Any = None, door: str = "node"
    ) -> Deferred[Any]:
        """Run a method; the Deferred fails with AdminError for an unknown name or a
        method's own error.  ``door`` (one of DOORS) is who asks, for the counts."""
        method = self.lookup(name, node)
        if method is None:
            self.requests[(UNKNOWN, door, "error")] += 1
            return fail(AdminError(f"Unknown action '{name.lower()}', try 'list' for help"))
        try:
            checked = self.check_arguments(method, arguments)
        except AdminError as e:
            self.requests[(method.key, door, "error")] += 1
            return fail(e)
        requests, key = self.requests, method.key

        def count(result: Any) -> Any:
            ok = not isinstance(result, Failure)
            requests[(key, door, "ok" if ok else "error")] += 1
            return result

        return maybeDeferred(method.handler, node, checked).addBoth(count)

    def list_entries(self, node: Any = None) -> list[dict[str, Any]]:
        """What ``list`` answers: every method the node has, sorted, with its fields."""
        entries = []
        for method in self.for_node(node):
            entry: dict[str, Any] = {"command": method.key, "description": method.description}
            if method.args:
                entry["fields"] = method.fields
            entries.append(entry)
        return entries
