"""Every ironwood network-layer packet, encoded and decoded (spec/ironwood.md §2-§5).

A link carries frames ``u16be(len) ‖ body`` and a body is ``type ‖ payload``.  Protocol
packets (types 1-8) decode to frozen value objects; traffic (types 9 and 10) stays raw bytes
so that forwarding costs a few slices and no objects.  Decoders mirror the Go decoders, odd
corners included, and raise :class:`~ygg.errors.DecodeError` wherever Go returns an error;
signatures are never checked here, only the exact signed bytes are built.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ygg.errors import DecodeError

(
    DUMMY,
    TREE,
    BOOTSTRAP,
    BOOTSTRAP_ACK,
    SETUP,
    TEARDOWN,
    PATH_NOTIFY,
    PATH_LOOKUP,
    PATH_RESPONSE,
    DHT_TRAFFIC,
    PATH_TRAFFIC,
) = range(11)

KIND_DUMMY, KIND_STANDARD, KIND_OOB = 0, 1, 2

MAX_BODY = 65535
KEEPALIVE = b"\x00"
TRAFFIC_HEADER = 65  # source(32) + dest(32) + kind(1)

KEY_SIZE = 32
SIG_SIZE = 64
_LABEL_FIXED = SIG_SIZE + 2 * KEY_SIZE + 8
_TEARDOWN_SIZE = 8 + 2 * KEY_SIZE + 8

_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_BYTE = [bytes((i,)) for i in range(256)]  # one-byte varints, type and kind bytes, no allocation
_MAX_U64 = (1 << 64) - 1

Signer = Callable[[bytes], bytes]


def priority_body(prio: int) -> bytes:
    """The dummy frame body that tells the peer our link priority (spec §3.4)."""
    if not 0 <= prio <= 255:
        raise ValueError(f"a link priority is 0-255, not {prio}")
    return b"\x00p" + _BYTE[prio]


def dummy_priority(body: bytes) -> int | None:
    """The priority a dummy body announces, or None: Go ignores anything but ``'p' prio``."""
    if len(body) >= 3 and body[1] == 0x70:
        return body[2]
    return None


# -- varints and paths ----------------------------------------------------------------------


def put_uvarint(value: int) -> bytes:
    """``value`` as Go ``binary.PutUvarint`` writes it (1-10 bytes)."""
    if 0 <= value < 0x80:
        return _BYTE[value]
    if not 0 <= value <= _MAX_U64:
        raise ValueError(f"a uvarint holds 0..2**64-1, not {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def get_uvarint(buf: bytes, offset: int = 0, end: int | None = None) -> tuple[int, int]:
    """Go ``binary.Uvarint`` of ``buf[offset:end]``, raw result (spec §2.1).

    ``(v, n)`` with ``n > 0`` when well formed (non-minimal forms too), ``(0, 0)`` when the
    input is empty or ends mid-varint, ``(0, -n)`` on overflow at byte ``n``.
    """
    if end is None:
        end = len(buf)
    result = 0
    shift = 0
    for i in range(end - offset):
        if i == 10:
            return 0, -11
        b = buf[offset + i]
        if b < 0x80:
            if i == 9 and b > 1:
                return 0, -10
            return result | (b << shift), i + 1
        result |= (b & 0x7F) << shift
        shift += 7
    return 0, 0


def encode_path(ports: Iterable[int]) -> bytes:
    """``PATH(p1, p2, …)``: the varints back to back, no count."""
    return b"".join(map(put_uvarint, ports))


def decode_path(buf: bytes, offset: int, end: int | None = None) -> tuple[list[int], int]:
    """Go ``wireDecodePath`` on ``buf[offset:end]`` -> (ports, offset after them) (spec §2.2).

    Reads varints until one is 0 or the input ends.  The network layer takes the absolute
    count, so an overflowing varint is a consumed 0; a truncated one is a 0 that consumes
    nothing, which leaves bytes behind for the caller's own length checks to refuse.
    """
    if end is None:
        end = len(buf)
    ports: list[int] = []
    while offset < end:
        b = buf[offset]
        if b < 0x80:  # nearly every port: one byte
            value, offset = b, offset + 1
        else:
            value, n = get_uvarint(buf, offset, end)
            offset += n if n >= 0 else -n
        ports.append(value)
        if value == 0:
            break
    return ports, offset


# -- value objects ------------------------------------------------------------------------


def _need(value: bytes, size: int, what: str) -> None:
    # Go's fields are fixed arrays; a wrong size here would misalign the peer's decoder.
    if len(value) != size:
        raise ValueError(f"{what} is {size} bytes, not {len(value)}")


def _short(what: str) -> DecodeError:
    return DecodeError(f"{what}: too short")


@dataclass(slots=True, frozen=True)
class TreeHop:
    """One hop of a tree announcement: the signer reaches ``next`` over its port ``port``."""

    next: bytes
    port: int
    sig: bytes

    def __post_init__(self) -> None:
        _need(self.next, KEY_SIZE, "hop next key")
        _need(self.sig, SIG_SIZE, "hop signature")


@dataclass(slots=True, frozen=True)
class TreeInfo:
    """A tree announcement (type 1, spec §5.1)."""

    root: bytes
    seq: int
    hops: tuple[TreeHop, ...] = ()

    def __post_init__(self) -> None:
        _need(self.root, KEY_SIZE, "tree root")

    def _prefix(self, count: int) -> bytearray:
        out = bytearray(self.root)
        out += _U64.pack(self.seq)
        for hop in self.hops[:count]:
            out += hop.next
            out += put_uvarint(hop.port)
        return out

    def hop_message(self, i: int) -> bytes:
        """The bytes hop ``i``'s signer signed: root, seq, and every next/port up to hop i."""
        if not 0 <= i < len(self.hops):
            raise IndexError(i)
        return bytes(self._prefix(i + 1))

    def hop_signer(self, i: int) -> bytes:
        return self.root if i == 0 else self.hops[i - 1].next

    def signed_hops(self) -> Iterator[tuple[bytes, bytes, bytes]]:
        """(signer, message, signature) of every hop, built incrementally."""
        msg = self._prefix(0)
        signer = self.root
        for hop in self.hops:
            msg += hop.next
            msg += put_uvarint(hop.port)
            yield signer, bytes(msg), hop.sig
            signer = hop.next

    def add_hop(self, next_key: bytes, port: int, sign: Signer) -> TreeInfo:
        """This info as sent over a link: one more hop to ``next_key``, signed by us."""
        msg = self._prefix(len(self.hops))
        msg += next_key
        msg += put_uvarint(port)
        hop = TreeHop(next_key, port, sign(bytes(msg)))
        return TreeInfo(self.root, self.seq, (*self.hops, hop))

    def from_key(self) -> bytes:
        """The sender: next of the second-to-last hop, or the root for a single hop."""
        return self.hops[-2].next if len(self.hops) > 1 else self.root

    def dest(self) -> bytes:
        return self.hops[-1].next if self.hops else self.root

    def ports(self) -> list[int]:
        return [hop.port for hop in self.hops]

    def check_loops(self) -> bool:
        """Root and every hop's next all distinct (a parent-choice test, not a receive check)."""
        keys = {self.root}
        keys.update(hop.next for hop in self.hops)
        return len(keys) == len(self.hops) + 1

    def encode(self) -> bytes:
        out = bytearray(self.root)
        out += _U64.pack(self.seq)
        for hop in self.hops:
            out += hop.next
            out += put_uvarint(hop.port)
            out += hop.sig
        return bytes(out)

    @classmethod
    def decode(cls, payload: bytes) -> TreeInfo:
        buf = bytes(payload)
        end = len(buf)
        if end < KEY_SIZE + 8:
            raise _short("tree")
        root = buf[:KEY_SIZE]
        (seq,) = _U64.unpack_from(buf, KEY_SIZE)
        pos = KEY_SIZE + 8
        hops = []
        while pos < end:
            if end - pos < KEY_SIZE:
                raise _short("tree hop")
            next_key = buf[pos : pos + KEY_SIZE]
            pos += KEY_SIZE
            # Go's chop never fails here: a bad varint is port 0 (a truncated one eats nothing).
            port, n = get_uvarint(buf, pos, end)
            pos += n if n >= 0 else -n
            if end - pos < SIG_SIZE:
                raise _short("tree hop")
            hops.append(TreeHop(next_key, port, buf[pos : pos + SIG_SIZE]))
            pos += SIG_SIZE
        return cls(root, seq, tuple(hops))


@dataclass(slots=True, frozen=True)
class Label:
    """A tree label (spec §5.2); also the whole payload of a bootstrap (type 2)."""

    sig: bytes
    key: bytes
    root: bytes
    seq: int
    path: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _need(self.sig, SIG_SIZE, "label signature")
        _need(self.key, KEY_SIZE, "label key")
        _need(self.root, KEY_SIZE, "label root")

    @staticmethod
    def signed_bytes(root: bytes, seq: int, path: Iterable[int]) -> bytes:
        # The labelled key itself is not signed.
        return root + _U64.pack(seq) + encode_path(path)

    @classmethod
    def signed(cls, sign: Signer, key: bytes, root: bytes, seq: int, path: Iterable[int]) -> Label:
        path = tuple(path)
        return cls(sign(cls.signed_bytes(root, seq, path)), key, root, seq, path)

    def message(self) -> bytes:
        return self.signed_bytes(self.root, self.seq, self.path)

    def encode(self) -> bytes:
        return b"".join(
            (self.sig, self.key, self.root, _U64.pack(self.seq), encode_path(self.path))
        )

    @classmethod
    def decode(cls, payload: bytes) -> Label:
        buf = bytes(payload)
        return _label_at(buf, 0, len(buf))


def _label_at(buf: bytes, pos: int, end: int) -> Label:
    if end - pos < _LABEL_FIXED:
        raise _short("label")
    sig = buf[pos : pos + SIG_SIZE]
    key = buf[pos + SIG_SIZE : pos + SIG_SIZE + KEY_SIZE]
    root = buf[pos + SIG_SIZE + KEY_SIZE : pos + SIG_SIZE + 2 * KEY_SIZE]
    (seq,) = _U64.unpack_from(buf, pos + SIG_SIZE + 2 * KEY_SIZE)
    path, pos = decode_path(buf, pos + _LABEL_FIXED, end)
    if pos != end:
        raise DecodeError("label: bytes after the path")
    return Label(sig, key, root, seq, tuple(path))


@dataclass(slots=True, frozen=True)
class SetupToken:
    """Permission from ``dest.key`` for ``source`` to build a DHT path to it (spec §5.4)."""

    sig: bytes
    source: bytes
    dest: Label

    def __post_init__(self) -> None:
        _need(self.sig, SIG_SIZE, "token signature")
        _need(self.source, KEY_SIZE, "token source")

    @classmethod
    def signed(cls, sign: Signer, source: bytes, dest: Label) -> SetupToken:
        return cls(sign(source + dest.encode()), source, dest)

    def message(self) -> bytes:
        return self.source + self.dest.encode()

    def encode(self) -> bytes:
        return self.sig + self.message()

    @classmethod
    def decode(cls, payload: bytes) -> SetupToken:
        buf = bytes(payload)
        return _token_at(buf, 0, len(buf))


def _token_at(buf: bytes, pos: int, end: int) -> SetupToken:
    return SetupToken(*_sig_key_label_at(buf, pos, end, "setup token"))


def _sig_key_label_at(buf: bytes, pos: int, end: int, what: str) -> tuple[bytes, bytes, Label]:
    """``sig ‖ key ‖ label``: the layout of a setup token and of a path notify."""
    if end - pos < SIG_SIZE + KEY_SIZE:
        raise _short(what)
    key_at = pos + SIG_SIZE
    label_at = key_at + KEY_SIZE
    return buf[pos:key_at], buf[key_at:label_at], _label_at(buf, label_at, end)


def _length_prefixed(buf: bytes, what: str) -> tuple[int, int]:
    """Where the ``uv(len) ‖ part`` at the start of ``buf`` puts its part: (begin, stop)."""
    size, n = get_uvarint(buf, 0)
    begin = n if n >= 0 else -n
    stop = begin + size
    # Go would panic on a length past 2**63 (negative int); refusing it is the only sane match.
    if stop > len(buf):
        raise DecodeError(f"{what}: length runs past the end")
    return begin, stop


@dataclass(slots=True, frozen=True)
class BootstrapAck:
    """Type 3 (spec §5.5): the bootstrapper's label, echoed, and a token for it."""

    bootstrap: Label
    token: SetupToken

    def encode(self) -> bytes:
        boot = self.bootstrap.encode()
        return put_uvarint(len(boot)) + boot + self.token.encode()

    @classmethod
    def decode(cls, payload: bytes) -> BootstrapAck:
        buf = bytes(payload)
        begin, stop = _length_prefixed(buf, "bootstrap ack")
        return cls(_label_at(buf, begin, stop), _token_at(buf, stop, len(buf)))


@dataclass(slots=True, frozen=True)
class Setup:
    """Type 4 (spec §5.6), signed by ``token.source``."""

    sig: bytes
    seq: int
    token: SetupToken

    def __post_init__(self) -> None:
        _need(self.sig, SIG_SIZE, "setup signature")

    @classmethod
    def signed(cls, sign: Signer, seq: int, token: SetupToken) -> Setup:
        return cls(sign(_U64.pack(seq) + token.encode()), seq, token)

    def message(self) -> bytes:
        return _U64.pack(self.seq) + self.token.encode()

    def encode(self) -> bytes:
        return self.sig + self.message()

    @classmethod
    def decode(cls, payload: bytes) -> Setup:
        buf = bytes(payload)
        if len(buf) < SIG_SIZE + 8:
            raise _short("setup")
        (seq,) = _U64.unpack_from(buf, SIG_SIZE)
        return cls(buf[:SIG_SIZE], seq, _token_at(buf, SIG_SIZE + 8, len(buf)))


@dataclass(slots=True, frozen=True)
class Teardown:
    """Type 5 (spec §5.7): unsigned, exactly 80 bytes."""

    seq: int
    key: bytes
    root: bytes
    root_seq: int

    def __post_init__(self) -> None:
        _need(self.key, KEY_SIZE, "teardown key")
        _need(self.root, KEY_SIZE, "teardown root")

    def encode(self) -> bytes:
        return _U64.pack(self.seq) + self.key + self.root + _U64.pack(self.root_seq)

    @classmethod
    def decode(cls, payload: bytes) -> Teardown:
        buf = bytes(payload)
        if len(buf) != _TEARDOWN_SIZE:
            raise DecodeError(f"teardown: {len(buf)} bytes, not {_TEARDOWN_SIZE}")
        (seq,) = _U64.unpack_from(buf, 0)
        (root_seq,) = _U64.unpack_from(buf, 8 + 2 * KEY_SIZE)
        return cls(seq, buf[8 : 8 + KEY_SIZE], buf[8 + KEY_SIZE : 8 + 2 * KEY_SIZE], root_seq)


@dataclass(slots=True, frozen=True)
class PathNotify:
    """Type 6 (spec §5.8), signed by ``label.key``."""

    sig: bytes
    dest: bytes
    label: Label

    def __post_init__(self) -> None:
        _need(self.sig, SIG_SIZE, "notify signature")
        _need(self.dest, KEY_SIZE, "notify dest")

    @classmethod
    def signed(cls, sign: Signer, dest: bytes, label: Label) -> PathNotify:
        return cls(sign(dest + label.encode()), dest, label)

    def message(self) -> bytes:
        return self.dest + self.label.encode()

    def encode(self) -> bytes:
        return self.sig + self.message()

    @classmethod
    def decode(cls, payload: bytes) -> PathNotify:
        buf = bytes(payload)
        return _notify_at(buf, 0, len(buf))


def _notify_at(buf: bytes, pos: int, end: int) -> PathNotify:
    return PathNotify(*_sig_key_label_at(buf, pos, end, "path notify"))


def _rpath_at(buf: bytes, pos: int, end: int, what: str) -> tuple[int, ...]:
    rpath, pos = decode_path(buf, pos, end)
    if pos != end:
        raise DecodeError(f"{what}: bytes after the reverse path")
    if rpath and rpath[-1] == 0:
        # Receivers append their port; a 0 already there would end the route early.
        raise DecodeError(f"{what}: reverse path ends with 0")
    return tuple(rpath)


@dataclass(slots=True, frozen=True)
class PathLookup:
    """Type 7 (spec §5.9): a notify and the reverse ports collected on the way."""

    notify: PathNotify
    rpath: tuple[int, ...] = ()

    def encode(self) -> bytes:
        notify = self.notify.encode()
        return put_uvarint(len(notify)) + notify + encode_path(self.rpath)

    @classmethod
    def decode(cls, payload: bytes) -> PathLookup:
        buf = bytes(payload)
        begin, stop = _length_prefixed(buf, "path lookup")
        return cls(_notify_at(buf, begin, stop), _rpath_at(buf, stop, len(buf), "path lookup"))


@dataclass(slots=True, frozen=True)
class PathResponse:
    """Type 8 (spec §5.10): the source route ``path`` (ending with 0) and ``rpath``."""

    from_key: bytes
    path: tuple[int, ...]
    rpath: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _need(self.from_key, KEY_SIZE, "response from key")

    def encode(self) -> bytes:
        return self.from_key + encode_path(self.path) + encode_path(self.rpath)

    @classmethod
    def decode(cls, payload: bytes) -> PathResponse:
        buf = bytes(payload)
        end = len(buf)
        if end < KEY_SIZE:
            raise _short("path response")
        # A path without a 0 swallows everything and leaves rpath empty: not an error in Go.
        path, pos = decode_path(buf, KEY_SIZE, end)
        return cls(buf[:KEY_SIZE], tuple(path), _rpath_at(buf, pos, end, "path response"))


Packet = TreeInfo | Label | BootstrapAck | Setup | Teardown | PathNotify | PathLookup | PathResponse

_DECODERS: dict[int, Callable[[bytes], Packet]] = {
    TREE: TreeInfo.decode,
    BOOTSTRAP: Label.decode,
    BOOTSTRAP_ACK: BootstrapAck.decode,
    SETUP: Setup.decode,
    TEARDOWN: Teardown.decode,
    PATH_NOTIFY: PathNotify.decode,
    PATH_LOOKUP: PathLookup.decode,
    PATH_RESPONSE: PathResponse.decode,
}


def body(ptype: int, payload: bytes) -> bytes:
    return _BYTE[ptype] + payload


def decode_body(body: bytes) -> Packet:
    """The protocol packet (types 1-8) in a frame body; a bootstrap decodes to its Label.

    Dummy and traffic bodies (0, 9, 10) are the caller's to handle raw: passing one is a
    programming error (ValueError), unlike an unknown type byte, which is the peer's
    (DecodeError, and Go closes the link).
    """
    if not body:
        raise DecodeError("empty packet")
    ptype = body[0]
    decoder = _DECODERS.get(ptype)
    if decoder is None:
        if ptype in (DUMMY, DHT_TRAFFIC, PATH_TRAFFIC):
            raise ValueError(f"type {ptype} is not a protocol packet")
        raise DecodeError(f"unknown packet type {ptype}")
    return decoder(memoryview(body)[1:])


# -- traffic, raw -----------------------------------------------------------------------------


def dht_traffic(source: bytes, dest: bytes, kind: int, payload: bytes) -> bytes:
    """A whole type-9 body."""
    return b"".join((b"\x09", source, dest, _BYTE[kind], payload))


def path_traffic(
    ports: Iterable[int], source: bytes, dest: bytes, kind: int, payload: bytes
) -> bytes:
    """A whole type-10 body; ``ports`` must end with 0 for the receiver to find ``source``."""
    return b"".join((b"\x0a", encode_path(ports), source, dest, _BYTE[kind], payload))


def split_dht_traffic(body: bytes) -> int:
    """Where the traffic header starts in a type-9 body (1); DecodeError if it is short."""
    if len(body) < 1 + TRAFFIC_HEADER:
        raise DecodeError("dht traffic: too short")
    return 1


def split_path_traffic(body: bytes) -> tuple[list[int], int]:
    """The route of a type-10 body and the offset of its source key (spec §5.12)."""
    ports, offset = decode_path(body, 1)
    if len(body) - offset < TRAFFIC_HEADER:
        raise DecodeError("path traffic: too short after the path")
    return ports, offset


def traffic_dest(body: bytes, offset: int) -> bytes:
    """The destination key of a traffic body whose header starts at ``offset`` (all that
    forwarding by key reads); DecodeError if the body is too short for the header."""
    if len(body) - offset < TRAFFIC_HEADER:
        raise DecodeError("traffic: too short")
    start = offset + KEY_SIZE
    return body[start : start + KEY_SIZE]


def traffic_fields(body: bytes, offset: int) -> tuple[bytes, bytes, int, bytes]:
    """(source, dest, kind, payload) of a traffic body whose header starts at ``offset``."""
    dest = offset + KEY_SIZE
    kind = dest + KEY_SIZE
    return body[offset:dest], body[dest:kind], body[kind], body[kind + 1 :]


def reroute_path_traffic(ports: Iterable[int], body: bytes, offset: int) -> bytes:
    """The type-10 body to forward: new ``ports`` (re-encoded, as Go does) and the same rest."""
    return b"".join((b"\x0a", encode_path(ports), memoryview(body)[offset:]))


def path_to_dht_traffic(body: bytes, offset: int) -> bytes:
    """The type-9 body a broken source route falls back to (spec §9)."""
    return b"\x09" + memoryview(body)[offset:]


# -- framing ----------------------------------------------------------------------------------


def frame(body: bytes) -> bytes:
    """``u16be(len) ‖ body``; the caller drops bodies Go would not send (spec §3.2)."""
    return frame_header(body) + body


def frame_header(body: bytes) -> bytes:
    """The ``u16be(len)`` that goes before ``body`` on the link, for a writer that hands
    the two to its transport separately (no copy of the body)."""
    size = len(body)
    if not 0 < size <= MAX_BODY:
        raise ValueError(f"a frame body is 1-{MAX_BODY} bytes, not {size}")
    return _U16.pack(size)


class FrameError(DecodeError):
    """A broken length prefix; ``bodies`` are the complete frames that came before it.

    Go handles those frames before it meets the bad length, so a caller that wants the same
    observable behaviour processes them and then closes the link.
    """

    def __init__(self, message: str, bodies: list[bytes]) -> None:
        super().__init__(message)
        self.bodies = bodies


class FrameReader:
    """Splits one link's byte stream into frame bodies (spec §3.2)."""

    __slots__ = ("_broken", "_buf")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._broken = False

    def pending(self) -> int:
        """Bytes held for a frame not yet complete."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if self._broken:
            raise FrameError("stream already failed", [])
        buf = self._buf
        if buf:
            buf += data
            src: bytes | bytearray = buf
        else:
            src = data  # the usual case: parse the chunk itself, copy only the leftover
        bodies: list[bytes] = []
        pos = 0
        end = len(src)
        with memoryview(src) as view:
            while end - pos >= 2:
                size = (src[pos] << 8) | src[pos + 1]
                if size == 0:
                    self._broken = True
                    raise FrameError("zero-length frame", bodies)
                if end - pos - 2 < size:
                    break
                bodies.append(bytes(view[pos + 2 : pos + 2 + size]))
                pos += 2 + size
            if src is not buf:
                buf += view[pos:]
        if src is buf:
            del buf[:pos]  # CPython drops a bytearray's head without moving the tail
        return bodies
