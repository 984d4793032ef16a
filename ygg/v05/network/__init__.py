"""The sans-IO v0.5 routing core (ironwood 743fe2f ``network/``).

``wire`` and ``bloom`` are the packet codecs and the filter hashing; ``tree`` the spanning
tree CRDT, ``filters`` the bloom filters per tree link, ``pathfinder`` lookups, notifies and
brokens, ``peers`` one link (queue, keepalive, deadline), ``router`` the Router the node
uses (docs/routing.md).
"""
