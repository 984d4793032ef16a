"""Protocol messages inside sessions (spec yggdrasil §4.2): NodeInfo and remote debug.

Every message starts with the session type byte ``0x02``, then:

=============  ===========================================================
``00``         dummy
``01``         NodeInfo request            → answered with ``02 02`` ‖ NodeInfo JSON
``02`` ‖ JSON  NodeInfo response
``FF 01``      debug getSelf request       → ``02 FF 02`` ‖ getSelf JSON
``FF 03``      debug getPeers request      → ``02 FF 04`` ‖ peers' keys, concatenated
``FF 05``      debug getDHT request        → ``02 FF 06`` ‖ DHT keys, concatenated
=============  ===========================================================

v0.5 sends the same bytes (docs/spec-v05.md §7.1); only what is in two answers differs:
getSelf's JSON, and ``FF 05``/``FF 06``, which 0.5 calls getTree and answers with the
keys of the tree infos it holds.  :class:`BaseProtoHandler` is what both share; this
module's :class:`ProtoHandler` is v0.4's, ``ygg.v05.proto`` has v0.5's.

Requests are answered for anyone.  Our own requests wait 6 seconds for the answer from
exactly the key asked; several callers asking the same key all get the one answer (the Go
node keeps only the latest caller, which a crawler and an admin user asking at once would
trip over).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList

from ygg import gojson
from ygg.admin.registry import AdminError
from ygg.core.core import TYPE_PROTO
from ygg.keys import PUBLIC_KEY_SIZE as KEY_SIZE

NODEINFO_REQUEST = 0x01
NODEINFO_RESPONSE = 0x02
DEBUG = 0xFF
DEBUG_SELF_REQUEST, DEBUG_SELF_RESPONSE = 0x01, 0x02
DEBUG_PEERS_REQUEST, DEBUG_PEERS_RESPONSE = 0x03, 0x04
DEBUG_DHT_REQUEST, DEBUG_DHT_RESPONSE = 0x05, 0x06  # v0.5: getTree

TIMEOUT = 6.0

# What a reply to each request kind is, and the error an unanswered request gets.  "dht"
# is the third debug kind: getDHT in v0.4, getTree in v0.5.
_NODEINFO = "nodeinfo"
_KINDS = {
    _NODEINFO: (bytes((TYPE_PROTO, NODEINFO_REQUEST)), "Timed out waiting for response"),
    "self": (bytes((TYPE_PROTO, DEBUG, DEBUG_SELF_REQUEST)), "timeout"),
    "peers": (bytes((TYPE_PROTO, DEBUG, DEBUG_PEERS_REQUEST)), "timeout"),
    "dht": (bytes((TYPE_PROTO, DEBUG, DEBUG_DHT_REQUEST)), "timeout"),
}
_RESPONSES = {DEBUG_SELF_RESPONSE: "self", DEBUG_PEERS_RESPONSE: "peers", DEBUG_DHT_RESPONSE: "dht"}


def go_coords(coords: tuple[int, ...] | list[int]) -> str:
    """Go's ``%v`` of a port list: ``[]``, ``[1]``, ``[1 4 2]``."""
    return "[" + " ".join(str(c) for c in coords) + "]"


def split_keys(data: bytes) -> list[bytes]:
    return [data[i : i + KEY_SIZE] for i in range(0, len(data) - KEY_SIZE + 1, KEY_SIZE)]


def parse_node_info(data: bytes) -> Any:
    try:
        return gojson.loads(data)
    except (ValueError, json.JSONDecodeError) as e:
        raise AdminError(f"Failed to marshal response: {e}") from None


def parse_self(data: bytes) -> Any:
    try:
        return gojson.loads(data)
    except ValueError as e:
        raise AdminError(f"invalid character in response: {e}") from None


class BaseProtoHandler:
    """Answering and asking NodeInfo and remote debug over one network's sessions.

    ``send(dest, message)`` writes a proto message (``02 …``) to a key; ``peer_keys()`` and
    ``dht_keys()`` are the keys the second and third debug kinds answer with; ``mtu`` is
    the core's IPv6 MTU, which cuts those answers (len + 2 ≤ mtu, as Go does)."""

    def __init__(
        self,
        send: Callable[[bytes, bytes], None],
        clock: Any,
        public_key: bytes,
        node_info: bytes,
        peer_keys: Callable[[], list[bytes]],
        dht_keys: Callable[[], list[bytes]],
        mtu: int,
    ) -> None:
        self._send = send
        self.clock = clock
        self.public_key = public_key
        self.node_info = node_info
        self._peer_keys = peer_keys
        self._dht_keys = dht_keys
        self.mtu = mtu
        self._waiting: dict[tuple[str, bytes], list[Deferred[bytes]]] = {}

    def self_reply(self) -> bytes:
        """The JSON a debug getSelf request is answered with."""
        raise NotImplementedError

    # -- answering ------------------------------------------------------------------------

    def handle(self, source: bytes, message: bytes) -> None:
        """A proto message (starting with 0x02) from ``source``."""
        if len(message) < 2:
            return
        kind = message[1]
        if kind == NODEINFO_REQUEST:
            self._send(source, bytes((TYPE_PROTO, NODEINFO_RESPONSE)) + self.node_info)
        elif kind == NODEINFO_RESPONSE:
            self._answered(_NODEINFO, source, message[2:])
        elif kind == DEBUG and len(message) >= 3:
            self._debug(source, message[2], message[3:])

    def _debug(self, source: bytes, kind: int, data: bytes) -> None:
        if kind == DEBUG_SELF_REQUEST:
            self._reply_debug(source, DEBUG_SELF_RESPONSE, self.self_reply())
        elif kind == DEBUG_PEERS_REQUEST:
            self._reply_debug(source, DEBUG_PEERS_RESPONSE, self._keys(self._peer_keys()))
        elif kind == DEBUG_DHT_REQUEST:
            self._reply_debug(source, DEBUG_DHT_RESPONSE, self._keys(self._dht_keys()))
        elif kind in _RESPONSES:
            self._answered(_RESPONSES[kind], source, data)

    def _keys(self, keys: list[bytes]) -> bytes:
        # As many whole keys as fit in one message after the two type bytes.
        room = (self.mtu - 2) // KEY_SIZE
        return b"".join(keys[:room])

    def _reply_debug(self, dest: bytes, kind: int, data: bytes) -> None:
        self._send(dest, bytes((TYPE_PROTO, DEBUG, kind)) + data)

    # -- asking ---------------------------------------------------------------------------

    def _ask(self, kind: str, key: bytes) -> Deferred[bytes]:
        key = bytes(key)
        request, timeout_text = _KINDS[kind]
        waiter: Deferred[bytes] = Deferred()
        waiters = self._waiting.setdefault((kind, key), [])
        waiters.append(waiter)
        timer = self.clock.callLater(TIMEOUT, self._timed_out, kind, key, waiter, timeout_text)
        waiter.addBoth(_cancel_timer, timer)
        if key == self.public_key:
            # Asking ourselves: answer as a remote node would, without a session to self.
            self.clock.callLater(0, self._answer_self, kind)
        else:
            self._send(key, request)
        return waiter

    def _answer_self(self, kind: str) -> None:
        if kind == _NODEINFO:
            reply = self.node_info
        elif kind == "self":
            reply = self.self_reply()
        else:
            reply = self._keys(self._peer_keys() if kind == "peers" else self._dht_keys())
        self._answered(kind, self.public_key, reply)

    def _answered(self, kind: str, source: bytes, data: bytes) -> None:
        for waiter in self._waiting.pop((kind, bytes(source)), []):
            if not waiter.called:
                waiter.callback(data)

    def _timed_out(self, kind: str, key: bytes, waiter: Deferred[bytes], text: str) -> None:
        waiters = self._waiting.get((kind, key), [])
        if waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiting[(kind, key)]
        if not waiter.called:
            waiter.errback(AdminError(text))

    def get_node_info(self, key: bytes) -> Deferred[Any]:
        """The remote node's NodeInfo, parsed (key order and numbers as sent)."""
        return self._ask(_NODEINFO, key).addCallback(parse_node_info)

    def ask_self(self, key: bytes) -> Deferred[Any]:
        """The remote node's debug getSelf, parsed."""
        return self._ask("self", key).addCallback(parse_self)

    def ask_peers(self, key: bytes) -> Deferred[list[bytes]]:
        """The keys of the remote node's peers."""
        return self._ask("peers", key).addCallback(split_keys)

    def ask_dht(self, key: bytes) -> Deferred[list[bytes]]:
        """The keys of the remote node's third debug answer (v0.4 DHT, v0.5 tree)."""
        return self._ask("dht", key).addCallback(split_keys)


class ProtoHandler(BaseProtoHandler):
    """v0.4's: getSelf answers ``{"coords":"[1 2]","key":"…"}``."""

    def __init__(
        self,
        send: Callable[[bytes, bytes], None],
        clock: Any,
        public_key: bytes,
        node_info: bytes,
        get_self: Callable[[], Any],
        peer_keys: Callable[[], list[bytes]],
        dht_keys: Callable[[], list[bytes]],
        mtu: int,
    ) -> None:
        super().__init__(send, clock, public_key, node_info, peer_keys, dht_keys, mtu)
        self._get_self = get_self

    def self_reply(self) -> bytes:
        me = self._get_self()
        reply = {"coords": go_coords(me.coords), "key": self.public_key.hex()}
        return gojson.dumps(reply, sort_keys=True).encode()

    def remote_get_self(self, key: bytes) -> Deferred[Any]:
        return self.ask_self(key)

    def remote_get_peers(self, key: bytes) -> Deferred[list[bytes]]:
        return self.ask_peers(key)

    def remote_get_dht(self, key: bytes) -> Deferred[list[bytes]]:
        return self.ask_dht(key)


def first_answer(asks: list[Deferred[Any]]) -> Deferred[Any]:
    """The first of ``asks`` to succeed; if none does, the first one's failure.  The
    others' later results are consumed (a request to a second network that loses the race
    still times out, quietly)."""
    if len(asks) == 1:
        return asks[0]

    def result(outcome: Any) -> Any:
        if isinstance(outcome, tuple):  # (value, index): one succeeded
            return outcome[0]
        return outcome[0][1]  # every one failed: [(False, failure), …]

    together = DeferredList(asks, fireOnOneCallback=True, consumeErrors=True)
    return together.addCallback(result)


def _cancel_timer(result: Any, timer: Any) -> Any:
    if timer.active():
        timer.cancel()
    return result
