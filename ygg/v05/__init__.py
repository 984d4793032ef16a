"""yggdrasil v0.5: the protocol of today's public network, beside v0.4 in the same node.

Specified in docs/spec-v05.md (yggdrasil-go 0.5.12, ironwood 743fe2f).  ``handshake`` holds
the signed link metadata, ``network.wire`` the ironwood v0.5 link frames; both are sans-IO
codecs that raise :class:`~ygg.errors.DecodeError` on any malformed input.
"""
