"""A TLS-terminating proxy on loopback, as a reverse proxy stands in front of a ws:// listener.

``python -m tests.tools.tls_proxy PORT`` listens on 127.0.0.1 (a free port, printed as
``listening on 127.0.0.1:N``), takes TLS with a throwaway self-signed certificate, and
forwards the plain stream to 127.0.0.1:PORT until it is stopped.  yggdrasil 0.5.12 does
not listen on wss:// itself; this is how its users serve wss to peers.
"""

from __future__ import annotations

import sys

from twisted.internet import reactor
from twisted.protocols.portforward import ProxyFactory
from twisted.protocols.tls import TLSMemoryBIOFactory

from ygg.keys import NodeKey
from ygg.links.tls import server_context_factory


def main(argv: list[str]) -> None:
    target = int(argv[1])
    tls = server_context_factory(NodeKey.generate())
    factory = TLSMemoryBIOFactory(tls, False, ProxyFactory("127.0.0.1", target))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    print(f"listening on 127.0.0.1:{port.getHost().port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv)
