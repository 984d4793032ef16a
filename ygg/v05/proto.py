"""NodeInfo and remote debug as yggdrasil 0.5 has them (docs/spec-v05.md §7.1–7.3).

The bytes are v0.4's (``ygg.core.proto``); what 0.5 answers differs:

* getSelf (``FF 01`` → ``FF 02``): ``{"key":"<hex>","routing_entries":"<n>"}``, a JSON
  object of strings (``routing_entries``, the tree infos held, is a string);
* getPeers (``FF 03`` → ``FF 04``): the key of every link that is up, a key once per link;
* getTree (``FF 05`` → ``FF 06``, 0.4's getDHT): the keys of every tree info held.

Both key lists are cut so that the answer's length + 2 ≤ 0.5's ``Core.MTU()`` (65535).
The asking side returns what 0.5.12's admin API shows under the remote's address:
``get_node_info`` the NodeInfo, ``remote_get_self`` the getSelf object,
``remote_get_peers``/``remote_get_tree`` ``{"keys": ["<hex>", …]}`` (``{}`` for none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from ygg import gojson
from ygg.core.proto import BaseProtoHandler
from ygg.v05.core import IPV6_MTU


def admin_keys(keys: list[bytes]) -> dict[str, list[str]]:
    """A key list as 0.5.12's admin shows it: Go fills the map only when there are keys."""
    return {"keys": [key.hex() for key in keys]} if keys else {}


class ProtoHandler(BaseProtoHandler):
    def __init__(
        self,
        send: Callable[[bytes, bytes], None],
        clock: Any,
        public_key: bytes,
        node_info: bytes,
        routing_entries: Callable[[], int],
        peer_keys: Callable[[], list[bytes]],
        tree_keys: Callable[[], list[bytes]],
        mtu: int = IPV6_MTU,
    ) -> None:
        super().__init__(send, clock, public_key, node_info, peer_keys, tree_keys, mtu)
        self._routing_entries = routing_entries

    def self_reply(self) -> bytes:
        reply = {"key": self.public_key.hex(), "routing_entries": str(self._routing_entries())}
        return gojson.dumps(reply, sort_keys=True).encode()

    def remote_get_self(self, key: bytes) -> Deferred[Any]:
        return self.ask_self(key)

    def remote_get_peers(self, key: bytes) -> Deferred[dict[str, list[str]]]:
        return self.ask_peers(key).addCallback(admin_keys)

    def remote_get_tree(self, key: bytes) -> Deferred[dict[str, list[str]]]:
        return self.ask_dht(key).addCallback(admin_keys)
