"""What the admin shell does with a line: the registry's methods as commands (``key=value``
arguments, yggdrasilctl's tables or ``-json``), ``help`` and ``exit``, and completion.
Nothing here knows SSH or terminals."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ygg import gojson
from ygg.admin import tables
from ygg.admin.forms import V04, node_form
from ygg.admin.registry import AdminError, Method, Registry

log = Logger(namespace="ygg.admin")

JSON_FLAGS = ("-json", "--json")


@dataclass(frozen=True)
class Result:
    text: str
    status: int = 0
    error: bool = False
    exit: bool = False


BUILTINS = {
    "help": ("[command]", "Show the commands, or what one command takes"),
    "exit": ("", "Leave the shell"),
}


class ShellCommands:
    """What the shell does with a line: the registry's methods, plus help and exit."""

    def __init__(self, node: Any, registry: Registry) -> None:
        self.node = node
        self.registry = registry

    def run(self, line: str) -> Deferred[Result]:
        return maybeDeferred(self._run, line).addErrback(self._crashed)

    def _crashed(self, failure: Failure) -> Result:
        log.failure("Admin shell command failed", failure)
        return Result("Error: Check your syntax and input types\n", 1, error=True)

    def _run(self, line: str) -> Result | Deferred[Result]:
        try:
            words = shlex.split(line)
        except ValueError as e:
            return Result(f"Error: {e}\n", 1, error=True)
        as_json = any(w.lower() in JSON_FLAGS for w in words)
        words = [w for w in words if w.lower() not in JSON_FLAGS]
        if not words:
            return Result("")
        name, rest = words[0], words[1:]
        if name.lower() in ("exit", "quit", "logout"):
            return Result("", exit=True)
        if name.lower() in ("help", "?"):
            return self.help(rest[0] if rest else None)
        method = self.registry.lookup(name, self.node)
        if method is None:
            return Result(f"Error: unknown command '{name}', try 'help'\n", 1, error=True)
        try:
            arguments = self.arguments(method, rest)
        except AdminError as e:
            return Result(f"Error: {e}\n", 1, error=True)
        d = self.registry.call(self.node, method.name, arguments, door="shell")
        form = arguments.get("version") or ("0.4" if node_form(self.node) == V04 else "0.5")
        return d.addCallbacks(self._format, self._failed, callbackArgs=(method, as_json, form))

    def arguments(self, method: Method, words: list[str]) -> dict[str, Any]:
        """``key=value`` words as the method's typed arguments."""
        kinds = {arg.name.lower(): arg for arg in method.args}
        arguments: dict[str, Any] = {}
        for word in words:
            key, sep, value = word.partition("=")
            if not sep:
                raise AdminError(f"expected key=value, got {word!r}")
            arg = kinds.get(key.lower())
            if arg is None:
                takes = ", ".join(method.fields) or "no arguments"
                raise AdminError(f"{method.name} has no argument {key!r} (it takes {takes})")
            arguments[arg.name] = _convert(arg.kind, arg.name, value)
        return arguments

    def _format(self, result: Any, method: Method, as_json: bool, form: str = V04) -> Result:
        data = json.loads(gojson.dumps(result))  # what the other doors' clients see
        if as_json:
            return Result(gojson.dumps(data, indent=2) + "\n")
        try:
            # The tables of the yggdrasilctl of the node's version (0.5.12's once v0.5
            # runs: they show each row's network).
            text = tables.render(method.key, data, form)
        except (TypeError, ValueError, AttributeError):
            text = None
        if text is None and method.table and isinstance(data, dict):
            rows = data.get(method.table)
            if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
                text = tables.generic(rows)
        if text is None:
            text = gojson.dumps(data, indent=2) + "\n"
        return Result(text)

    def _failed(self, failure: Failure) -> Result:
        failure.trap(AdminError)
        return Result(f"Error: {failure.value}\n", 1, error=True)

    def help(self, name: str | None = None) -> Result:
        if name is None:
            rows = [
                [m.name, ", ".join(f"{f}=..." for f in m.fields), m.description]
                for m in self.registry.for_node(self.node)
            ]
            rows += [[n, args, text] for n, (args, text) in BUILTINS.items()]
            footer = "\nAdd -json to a command for its reply as JSON.\n"
            return Result(tables.table(rows, ["Command", "Arguments", "Description"]) + footer)
        if name.lower() in BUILTINS:
            args, text = BUILTINS[name.lower()]
            return Result(f"{name.lower()} {args}\n  {text}\n")
        method = self.registry.lookup(name, self.node)
        if method is None:
            return Result(f"Error: unknown command '{name}', try 'help'\n", 1, error=True)
        lines = [" ".join([method.name, *(f"{f}=..." for f in method.fields)]).rstrip()]
        lines.append(f"  {method.description}")
        for arg in method.args:
            lines.append(f"  {arg.name}: {arg.help or arg.kind}")
        if method.help:
            lines += ["", *(f"  {line}" for line in method.help.splitlines())]
        return Result("\n".join(lines) + "\n")

    def names(self) -> list[str]:
        return [m.name for m in self.registry.for_node(self.node)] + list(BUILTINS)

    def complete(self, before: str) -> list[str]:
        """Candidates for the word that ends ``before`` (the text left of the cursor)."""
        words = before.split(" ")
        word = words[-1]
        done = [w for w in words[:-1] if w]
        if not done:
            return _matching(self.names(), word)
        if done[0].lower() in ("help", "?") and len(done) == 1:
            return _matching(self.names(), word)
        method = self.registry.lookup(done[0], self.node)
        if method is None or "=" in word:
            return []
        given = {w.partition("=")[0].lower() for w in done[1:]}
        offered = [f"{f}=" for f in method.fields if f.lower() not in given]
        return _matching(offered + list(JSON_FLAGS[:1]), word)


def _matching(candidates: list[str], word: str) -> list[str]:
    return sorted(c for c in candidates if c.lower().startswith(word.lower()))


def _convert(kind: str, name: str, value: str) -> Any:
    if kind == "bool":
        if value.lower() in ("true", "1", "yes", "on"):
            return True
        if value.lower() in ("false", "0", "no", "off"):
            return False
        raise AdminError(f"{name}: expected true or false, got {value!r}")
    if kind == "number":
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                raise AdminError(f"{name}: expected a number, got {value!r}") from None
    return value


def common_prefix(candidates: list[str]) -> str:
    """The longest prefix all candidates share, ignoring case (spelled as the first)."""
    first = candidates[0]
    length = len(first)
    for other in candidates[1:]:
        length = min(length, len(other))
        for i in range(length):
            if first[i].lower() != other[i].lower():
                length = i
                break
    return first[:length]
