"""Peers added and removed at runtime, kept across restarts without touching the config.

``addPeer``/``removePeer`` (from any admin front door) change the running node; this
module remembers those changes in a small JSON file beside the config file
(``<config>.state.json``), so that the next start applies them on top of the config.  The
user's config file is never rewritten: its comments and HJSON layout are the user's.

The state is kept relative to the config: a peer the config lists is never "added", and
only a peer the config lists can be "removed".  Re-adding a removed config peer (or
``clearRuntimeState``) undoes the removal.  The file is written atomically (a temporary
file in the same directory, then a rename) after every change, and removed when the state
is empty.  A node whose config came from standard input has no file to keep it beside:
its runtime changes last until it stops (it says so once).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.logger import Logger

from ygg.config import NodeConfig
from ygg.errors import YggError

log = Logger(namespace="ygg")

#: The state file of ``/etc/ygg.conf`` is ``/etc/ygg.conf.state.json``.
STATE_SUFFIX = ".state.json"
FORMAT = 1
_NOTE = (
    "Written by ygg: peers added or removed at runtime (addPeer/removePeer), applied on "
    "top of the config file at start. `ygg ctl clearRuntimeState` empties it."
)

#: A configured peer: (URI, interface), the interface "" for Peers.
PeerEntry = tuple[str, str]


class StateError(YggError):
    """A state file that cannot be read or written; the text says why."""


def state_path(config_path: str) -> str:
    return config_path + STATE_SUFFIX


def configured_peers(config: NodeConfig) -> list[PeerEntry]:
    """Peers, then InterfacePeers, as (URI, interface), in the file's order."""
    entries = [(uri, "") for uri in config.peers]
    for interface, uris in config.interface_peers.items():
        entries += [(uri, interface) for uri in uris]
    return entries


def split_peers(entries: Iterable[PeerEntry]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(URI, interface) entries as the config holds them: Peers and InterfacePeers."""
    peers: list[str] = []
    by_interface: dict[str, list[str]] = {}
    for uri, interface in entries:
        (by_interface.setdefault(interface, []) if interface else peers).append(uri)
    return tuple(peers), {name: tuple(uris) for name, uris in by_interface.items()}


@dataclass
class RuntimeState:
    """The runtime changes to the configured peers (plain data)."""

    added: list[PeerEntry] = field(default_factory=list)
    removed: list[PeerEntry] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def apply(self, config: NodeConfig) -> list[PeerEntry]:
        """The peers a node with ``config`` keeps up: the config's less the removed ones,
        then the added ones the config does not list."""
        configured = configured_peers(config)
        removed = set(self.removed)
        return [p for p in configured if p not in removed] + [
            p for p in self.added if p not in configured
        ]

    def note_added(self, entry: PeerEntry, config: NodeConfig) -> bool:
        """Record an addPeer; whether the state changed."""
        before = (list(self.added), list(self.removed))
        if entry in self.removed:
            self.removed.remove(entry)
        elif entry not in self.added and entry not in configured_peers(config):
            self.added.append(entry)
        return before != (self.added, self.removed)

    def note_removed(self, entry: PeerEntry, config: NodeConfig) -> bool:
        """Record a removePeer; whether the state changed."""
        before = (list(self.added), list(self.removed))
        if entry in self.added:
            self.added.remove(entry)
        if entry in configured_peers(config) and entry not in self.removed:
            self.removed.append(entry)
        return before != (self.added, self.removed)

    def to_data(self) -> dict[str, Any]:
        return {"added": _rows(self.added), "removed": _rows(self.removed)}

    @classmethod
    def from_data(cls, data: Any) -> RuntimeState:
        """ValueError naming what is wrong with ``data`` (a parsed state file)."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"format {data.get('format')!r} unknown (this ygg writes {FORMAT})")
        return cls(_entries(data, "added"), _entries(data, "removed"))


def _rows(entries: Iterable[PeerEntry]) -> list[dict[str, str]]:
    return [{"uri": uri, "interface": interface} for uri, interface in entries]


def _entries(data: dict[str, Any], name: str) -> list[PeerEntry]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise ValueError(f"{name}: expected a list")
    entries = []
    for i, row in enumerate(value):
        uri = row.get("uri") if isinstance(row, dict) else None
        interface = row.get("interface", "") if isinstance(row, dict) else None
        if not isinstance(uri, str) or not isinstance(interface, str):
            raise ValueError(f'{name}[{i}]: expected {{"uri": …, "interface": …}}')
        entries.append((uri, interface))
    return list(dict.fromkeys(entries))


def read_state(path: str) -> RuntimeState:
    """The state kept in ``path``: empty when there is no file; StateError when it cannot
    be read or makes no sense."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        return RuntimeState()
    except OSError as e:
        raise StateError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:  # not UTF-8, not JSON
        raise StateError(f"{path} is not JSON: {e}") from None
    try:
        return RuntimeState.from_data(data)
    except ValueError as e:
        raise StateError(f"{path}: {e}") from None


def write_state(path: str, state: RuntimeState) -> None:
    """Keep ``state`` in ``path`` atomically (or remove the file when it is empty);
    StateError when that fails.  The file is the owner's only (0600): a peer URI can
    carry a password."""
    if not state:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StateError(f"cannot remove {path}: {e.strerror}") from None
        return
    data = {"note": _NOTE, "format": FORMAT, **state.to_data()}
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, temporary = tempfile.mkstemp(prefix=".ygg-state-", dir=directory)
    except OSError as e:
        raise StateError(f"cannot write beside {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as e:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise StateError(f"cannot write {path}: {e.strerror}") from None


class RuntimePeers:
    """A node's runtime state and where it is kept (``path`` None: nowhere)."""

    def __init__(self, path: str | None, state: RuntimeState | None = None) -> None:
        self.path = path
        self.state = state or RuntimeState()
        self._said_not_kept = False

    @classmethod
    def open(cls, config_path: str | None) -> tuple[RuntimePeers, list[str]]:
        """The state beside ``config_path`` (None: not kept) and warning lines: a state
        file that cannot be read is ignored (and replaced at the next change)."""
        if config_path is None:
            return cls(None), []
        path = state_path(config_path)
        try:
            return cls(path, read_state(path)), []
        except StateError as e:
            return cls(path), [f"runtime state ignored: {e}"]

    def peer_added(self, entry: PeerEntry, config: NodeConfig) -> None:
        if self.state.note_added(entry, config):
            self.save()

    def peer_removed(self, entry: PeerEntry, config: NodeConfig) -> None:
        if self.state.note_removed(entry, config):
            self.save()

    def clear(self) -> RuntimeState:
        """Empty the state; returns what it held."""
        old, self.state = self.state, RuntimeState()
        if old:
            self.save()
        return old

    def save(self) -> None:
        if self.path is None:
            if not self._said_not_kept:
                self._said_not_kept = True
                log.warn(
                    "Peers added or removed at runtime are not kept across restarts: the "
                    "config did not come from a file"
                )
            return
        try:
            write_state(self.path, self.state)
        except StateError as e:
            log.error("Runtime peers not kept: {error}", error=str(e))

    def describe(self) -> dict[str, Any]:
        """What getRuntimeState answers."""
        return {"file": self.path or "", "kept": self.path is not None, **self.state.to_data()}
