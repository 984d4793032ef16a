"""The PeerWatch service: a timer that compares the node's peers with the last look."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ygg.interfaces import AdminError, Arg, INode, Method
from ygg_peerwatch import PeerWatchConfig

log = Logger(namespace="peerwatch")


class PeerWatchService(Service):
    def __init__(self, node: INode, config: PeerWatchConfig) -> None:
        self.node = node
        self.config = config
        self.events: deque[dict[str, Any]] = deque(maxlen=config.keep)
        self.known: dict[str, str] = {}  # key (hex) -> remote
        self.loop = LoopingCall(self.look)
        self.loop.clock = node.reactor

    def startService(self) -> None:
        super().startService()
        # Registered at start: the node removes a feature's methods when it stops.
        self.node.register_admin_method(
            Method(
                "getPeerWatch",
                "Show the last peers that came and went (PeerWatch)",
                self.get_peer_watch,
                # yggdrasilctl sends every argument as a string: limit=5 is "5".
                args=(Arg("limit", "string", "show at most this many events"),),
                table="events",
            )
        )
        log.info(
            "PeerWatch: looking at the peers every {interval} s", interval=self.config.interval
        )
        self.loop.start(self.config.interval, now=True)

    def stopService(self) -> None:
        if self.loop.running:
            self.loop.stop()
        return super().stopService()

    def look(self) -> None:
        now = {peer.key.hex(): peer.remote for peer in self.node.peers()}
        for key in now.keys() - self.known.keys():
            self._event("up", key, now[key])
        for key in self.known.keys() - now.keys():
            self._event("down", key, self.known[key])
        self.known = now

    def _event(self, what: str, key: str, remote: str) -> None:
        log.info("PeerWatch: peer {key} {what} ({remote})", key=key, what=what, remote=remote)
        when = datetime.fromtimestamp(self.node.reactor.seconds(), UTC)
        self.events.append(
            {
                "time": when.isoformat(timespec="seconds"),
                "event": what,
                "key": key,
                "remote": remote,
            }
        )

    def get_peer_watch(self, node: INode, args: dict[str, Any]) -> dict[str, Any]:
        text = args.get("limit") or str(self.config.keep)
        if not text.isdigit() or int(text) < 1:
            # The text is what the client shows: "Admin socket returned an error: …"
            raise AdminError(f"limit must be a whole number from 1, not {text!r}")
        return {"events": list(self.events)[-int(text) :]}
