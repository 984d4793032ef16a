"""v0.5's encrypted sessions (ironwood 743fe2f ``encrypted/``), sans-IO.

The packets are v0.4's (``ygg.session.wire``, ``ygg.session.crypto``) and so are the
buffers, inits, acks and flood budgets (``ygg.session.manager.BaseSessionManager``,
``ygg.session.budget``); what is v0.5's own is the receive rule for traffic
(docs/spec-v05.md §6.6) and 0.5.14's optional group password (§6.8).
"""
