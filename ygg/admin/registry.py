"""The one place an admin method lives: a function of the node returning plain data.

The JSON socket (yggdrasilctl's), AMP and the SSH shell only translate requests into
``Registry.call`` and its results into their own form.  Method names are matched
case-insensitively and listed lower-case, as yggdrasil does; arguments are checked against
the method's declared fields with the error texts Go's decoder gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, fail, maybeDeferred

from ygg.interfaces import AdminError, Arg, Method

__all__ = ["BUILTIN", "AdminError", "Arg", "Method", "MethodTaken", "Registry"]

#: The owner of the node's own methods.
BUILTIN = "ygg"


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


@dataclass
class Registry:
    methods: dict[str, Method] = field(default_factory=dict)
    #: Who registered each method (by key): BUILTIN or a feature's name.
    owners: dict[str, str] = field(default_factory=dict)

    def register(self, method: Method, owner: str = BUILTIN) -> None:
        """Add a method; MethodTaken when its name is taken (the first owner keeps it)."""
        if method.key in self.methods:
            raise MethodTaken(method, self.owners[method.key])
        self.methods[method.key] = method
        self.owners[method.key] = owner

    def unregister(self, name: str, owner: str | None = None) -> bool:
        """Remove a method (only if ``owner`` registered it, when given); whether it was."""
        key = name.lower()
        if key not in self.methods or (owner is not None and self.owners[key] != owner):
            return False
        del self.methods[key], self.owners[key]
        return True

    def owned_by(self, owner: str) -> list[str]:
        return [key for key, who in self.owners.items() if who == owner]

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
