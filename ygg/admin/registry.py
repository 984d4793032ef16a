"""The one place an admin method lives: a function of the node returning plain data.

The JSON socket (yggdrasilctl's), AMP and the SSH shell only translate requests into
``Registry.call`` and its results into their own form.  Method names are matched
case-insensitively and listed lower-case, as yggdrasil does; arguments are checked against
the method's declared fields with the error texts Go's decoder gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, fail, maybeDeferred

from ygg.errors import YggError


class AdminError(YggError):
    """A method's error; ``str(e)`` is what the client is told (yggdrasil's text)."""


@dataclass(frozen=True)
class Arg:
    name: str
    #: "string", "bool" or "number": the JSON type the argument must have.
    kind: str = "string"
    help: str = ""


Handler = Callable[[Any, dict[str, Any]], Any]


@dataclass(frozen=True)
class Method:
    name: str  # as yggdrasil spells it, e.g. "getPeers"; matched case-insensitively
    description: str
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


@dataclass
class Registry:
    methods: dict[str, Method] = field(default_factory=dict)

    def register(self, method: Method) -> None:
        if method.key in self.methods:
            raise ValueError("handler already exists")
        self.methods[method.key] = method

    def unregister(self, name: str) -> None:
        self.methods.pop(name.lower(), None)

    def lookup(self, name: str) -> Method | None:
        return self.methods.get(name.lower())

    def __iter__(self):
        return iter(sorted(self.methods.values(), key=lambda m: m.key))

    def check_arguments(self, method: Method, arguments: Any) -> dict[str, Any]:
        """The arguments as the handler gets them; unknown ones are ignored, as in Go."""
        struct = method.go_request or f"{method.name[0].upper()}{method.name[1:]}Request"
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise AdminError(
                f"json: cannot unmarshal {_go_type(arguments)} into Go value of type admin.{struct}"
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

    def call(self, node: Any, name: str, arguments: Any = None) -> Deferred[Any]:
        """Run a method; the Deferred fails with AdminError for an unknown name or a
        method's own error."""
        method = self.lookup(name)
        if method is None:
            return fail(AdminError(f"Unknown action '{name.lower()}', try 'list' for help"))
        try:
            checked = self.check_arguments(method, arguments)
        except AdminError as e:
            return fail(e)
        return maybeDeferred(method.handler, node, checked)

    def list_entries(self) -> list[dict[str, Any]]:
        """What ``list`` answers: every method, sorted, with its fields."""
        entries = []
        for method in self:
            entry: dict[str, Any] = {"command": method.key, "description": method.description}
            if method.args:
                entry["fields"] = method.fields
            entries.append(entry)
        return entries
