"""Session packets of the encrypted layer (spec §12.2–12.4), encoded and decoded here only.

The first byte of a network-layer payload is the session packet type.  Init and ack are
193 bytes: type ‖ ephemeral X25519 key E ‖ box(sig ‖ current ‖ next ‖ u64be(keySeq) ‖
u64be(seq)) keyed by E and the recipient's long-term key.  Traffic is
``03 ‖ uv(lks) ‖ uv(rks) ‖ uv(nonce) ‖ box(next ‖ message)``.

Decoders raise :class:`DecodeError` whose message is a short drop reason ("short",
"bad-varint", "bad-init", "bad-signature", …) that the session manager counts.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ygg.errors import DecodeError
from ygg.keys import NodeKey, verify
from ygg.network.wire import get_uvarint, put_uvarint
from ygg.session.crypto import BOX_OVERHEAD, KEY_SIZE, KeyPair, open_box, precompute, seal

DUMMY = 0
INIT = 1
ACK = 2
TRAFFIC = 3

SIGNATURE_SIZE = 64
INIT_PLAINTEXT_SIZE = SIGNATURE_SIZE + KEY_SIZE + KEY_SIZE + 8 + 8  # 144
INIT_SIZE = 1 + KEY_SIZE + BOX_OVERHEAD + INIT_PLAINTEXT_SIZE  # 193
TRAFFIC_OVERHEAD_MIN = 1 + 1 + 1 + 1 + BOX_OVERHEAD + KEY_SIZE  # 52
TRAFFIC_OVERHEAD = TRAFFIC_OVERHEAD_MIN + 9 + 9 + 9  # 79: what the MTU leaves room for

_seqs = struct.Struct(">QQ")


class Init(NamedTuple):
    """The signed fields of an init or ack."""

    current: bytes  # sender's current X25519 public key
    next: bytes  # sender's next X25519 public key
    key_seq: int
    seq: int  # sender's Unix time in whole seconds


def encode_init(
    kind: int,
    init: Init,
    ephemeral: KeyPair,
    recipient: bytes,
    signer: NodeKey,
    group: bytes = b"",
) -> bytes:
    """An init (``kind`` INIT) or ack (ACK) for the holder of the X25519 key ``recipient``.

    ``ephemeral`` must be fresh for every packet; ``signer`` is the sender's long-term key.
    ``group`` is 0.5.14's group secret (docs/spec-v05.md §6.8), signed ahead of the fields
    but never sent; empty (v0.4, and v0.5 without a GroupPassword) signs the fields alone.
    """
    signed = ephemeral.public + init.current + init.next + _seqs.pack(init.key_seq, init.seq)
    plaintext = signer.sign(group + signed) + signed[KEY_SIZE:]
    boxed = seal(plaintext, 0, precompute(recipient, ephemeral.private))
    return bytes((kind,)) + ephemeral.public + boxed


def decode_init(data: bytes, private: bytes, source: bytes, group: bytes = b"") -> tuple[int, Init]:
    """(kind, fields) of an init or ack, opened with our X25519 ``private`` key and checked
    against the signature of ``source``, the network-layer source key (over ``group`` ‖
    the fields: a sender with another group secret fails as "bad-signature")."""
    if len(data) != INIT_SIZE or data[0] not in (INIT, ACK):
        raise DecodeError("bad-init")
    ephemeral = data[1 : 1 + KEY_SIZE]
    plaintext = open_box(data[1 + KEY_SIZE :], 0, precompute(ephemeral, private))
    if plaintext is None:
        raise DecodeError("bad-init")
    signature = plaintext[:SIGNATURE_SIZE]
    fields = plaintext[SIGNATURE_SIZE:]
    if not verify(source, group + ephemeral + fields, signature):
        raise DecodeError("bad-signature")
    key_seq, seq = _seqs.unpack_from(fields, 2 * KEY_SIZE)
    return data[0], Init(fields[:KEY_SIZE], fields[KEY_SIZE : 2 * KEY_SIZE], key_seq, seq)


def encode_traffic_header(local_key_seq: int, remote_key_seq: int, nonce: int) -> bytes:
    """``03 ‖ uv(lks) ‖ uv(rks) ‖ uv(nonce)``; the sealed box follows it."""
    if local_key_seq < 0x80 and remote_key_seq < 0x80:
        if nonce < 0x80:
            return bytes((TRAFFIC, local_key_seq, remote_key_seq, nonce))
        if nonce < 0x10000000:  # 2 to 4 bytes: the first 2**28 packets of a session
            out = [TRAFFIC, local_key_seq, remote_key_seq]
            while nonce >= 0x80:
                out.append((nonce & 0x7F) | 0x80)
                nonce >>= 7
            out.append(nonce)
            return bytes(out)
        return bytes((TRAFFIC, local_key_seq, remote_key_seq)) + put_uvarint(nonce)
    return b"\x03" + put_uvarint(local_key_seq) + put_uvarint(remote_key_seq) + put_uvarint(nonce)


def decode_traffic_header(data: bytes) -> tuple[int, int, int, int]:
    """(sender's lks, sender's view of our lks, nonce, offset of the box) of a traffic packet.

    Go drops the packet when it is shorter than 52 bytes or when any of the three varints
    is truncated or overflows (raw ``binary.Uvarint`` count ≤ 0).  The type byte and three
    varints span at most 31 bytes, so in 52 none can be truncated: only overflow remains.
    """
    if len(data) < TRAFFIC_OVERHEAD_MIN:
        raise DecodeError("short")
    if data[0] != TRAFFIC:
        raise DecodeError("bad-type")
    a = data[1]
    if a < 0x80:
        i = 2
    else:
        a, n = get_uvarint(data, 1)
        if n <= 0:
            raise DecodeError("bad-varint")
        i = 1 + n
    b = data[i]
    if b < 0x80:
        i += 1
    else:
        b, n = get_uvarint(data, i)
        if n <= 0:
            raise DecodeError("bad-varint")
        i += n
    c = data[i]
    if c < 0x80:
        return a, b, c, i + 1
    # The nonce soon takes several bytes: up to 9 are read here (once per packet), a
    # tenth (a nonce of 2**63 or more) by get_uvarint with Go's overflow rule.
    c &= 0x7F
    j = i + 1
    shift = 7
    while shift < 63:
        byte = data[j]
        j += 1
        c |= (byte & 0x7F) << shift
        if byte < 0x80:
            return a, b, c, j
        shift += 7
    c, n = get_uvarint(data, i)
    if n <= 0:
        raise DecodeError("bad-varint")
    return a, b, c, i + n
