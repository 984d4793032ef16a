#!/usr/bin/env python3
"""Decode yggdrasil v0.5 peer links (and 0.5 multicast beacons) from a pcap.

    linkdump05.py LINKS.pcap [--port P]... [--password PORT=PW]... [--keys FILE]
                  [--json] [--frames N] [--bytes N]
    linkdump05.py --beacons BEACONS.pcap [--password PW] [--json]

Reads a classic libpcap file (``tcpdump -w``), reassembles every TCP connection (or those
with port P on one side) and decodes each direction with ygg's own v0.5 codecs: the
metadata handshake (checked against the listener port's password, default empty; a 0.4
``meta 00 04`` preamble is recognised and left undecoded), then every ironwood frame, its
fields and the exact signed bytes of each signature, which are verified.  With ``--keys``
(a JSON file whose ``private_keys`` maps names to 128-hex private keys) session init/ack
packets inside traffic are decrypted with the recipient's key.  ``--beacons`` decodes UDP
beacons to port 9001 and checks their password hash.  Only the standard library and ygg.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import struct
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ygg.errors import DecodeError
from ygg.keys import NodeKey, verify
from ygg.session import wire as session_wire
from ygg.v05 import handshake
from ygg.v05.network import wire

# -- pcap -------------------------------------------------------------------------------------


def read_pcap(path: str):
    data = Path(path).read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file (use tcpdump -w)")
    scale = 1e9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e6
    (linktype,) = struct.unpack(endian + "I", data[20:24])
    record = struct.Struct(endian + "IIII")
    pos = 24
    while pos + record.size <= len(data):
        sec, frac, size, _ = record.unpack_from(data, pos)
        pos += record.size
        yield sec + frac / scale, linktype, data[pos : pos + size]
        pos += size


def ip_payload(linktype: int, packet: bytes) -> tuple[str, str, int, bytes] | None:
    """(source, dest, protocol, payload) of an IPv4/IPv6 packet, addresses as text."""
    if linktype == 1:  # Ethernet (what tcpdump writes for Linux lo and veths)
        kind, packet = struct.unpack("!H", packet[12:14])[0], packet[14:]
    elif linktype == 113:  # Linux cooked
        kind, packet = struct.unpack("!H", packet[14:16])[0], packet[16:]
    elif linktype == 276:  # Linux cooked v2
        kind, packet = struct.unpack("!H", packet[0:2])[0], packet[20:]
    elif linktype in (12, 101):  # raw IP
        kind = 0x0800 if packet[0] >> 4 == 4 else 0x86DD
    else:
        return None
    if kind == 0x0800 and len(packet) >= 20:
        header = (packet[0] & 0x0F) * 4
        total = struct.unpack("!H", packet[2:4])[0]
        return (
            str(ipaddress.IPv4Address(packet[12:16])),
            str(ipaddress.IPv4Address(packet[16:20])),
            packet[9],
            packet[header:total],
        )
    if kind == 0x86DD and len(packet) >= 40:
        size = struct.unpack("!H", packet[4:6])[0]
        return (
            f"[{ipaddress.IPv6Address(packet[8:24])}]",
            f"[{ipaddress.IPv6Address(packet[24:40])}]",
            packet[6],
            packet[40 : 40 + size],
        )
    return None


def tcp_connections(path: str, ports: set[int]) -> list[dict[str, Any]]:
    """Connections in order of their SYN: dialer, listener, and both byte streams with the
    capture time of every chunk."""
    connections: dict[frozenset, dict[str, Any]] = {}
    order = []
    for ts, linktype, packet in read_pcap(path):
        ip = ip_payload(linktype, packet)
        if ip is None or ip[2] != 6 or len(ip[3]) < 20:
            continue
        src_ip, dst_ip, _, segment = ip
        sport, dport, seq = struct.unpack("!HHI", segment[:8])
        if ports and not ports & {sport, dport}:
            continue
        src, dst = (src_ip, sport), (dst_ip, dport)
        flags = segment[13]
        payload = segment[(segment[12] >> 4) * 4 :]
        key = frozenset((src, dst))
        conn = connections.get(key)
        if flags & 0x02 and not flags & 0x10:  # SYN: a new connection, dialled by src
            conn = {"dialer": src, "listener": dst, "t0": ts, "streams": {}}
            connections[key] = conn
            order.append(conn)
        if conn is None:
            continue
        stream = conn["streams"].setdefault(src, {"next": None, "data": bytearray(), "at": []})
        if flags & 0x02:
            stream["next"] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload:
            continue
        if stream["next"] is None:
            stream["next"] = seq
        ahead = (seq - stream["next"]) & 0xFFFFFFFF
        if ahead == 0:
            new = payload
        elif ahead > 0x7FFFFFFF and ((stream["next"] - seq) & 0xFFFFFFFF) < len(payload):
            new = payload[(stream["next"] - seq) & 0xFFFFFFFF :]  # partly retransmitted
        else:
            continue  # a retransmission, or a hole (not seen on lo)
        stream["at"].append((len(stream["data"]), ts - conn["t0"]))
        stream["data"] += new
        stream["next"] = (stream["next"] + len(new)) & 0xFFFFFFFF
    return order


def time_at(stream: dict[str, Any], offset: int) -> float:
    """When the byte at ``offset`` arrived (seconds since the SYN)."""
    when = 0.0
    for start, ts in stream["at"]:
        if start > offset:
            break
        when = ts
    return round(when, 6)


# -- decoding ---------------------------------------------------------------------------------


def _hex(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, tuple):
        return list(value)
    return value


def packet_fields(packet: wire.Packet) -> dict[str, Any]:
    if isinstance(packet, wire.Bloom):
        words = packet.words()
        bits = [i for i in range(wire.BLOOM_BITS) if packet.bits >> i & 1]
        return {
            "set_bits": bits if len(bits) <= 256 else None,
            "set_bit_count": len(bits),
            "zero_words": words.count(0),
            "one_words": words.count((1 << 64) - 1),
        }
    fields = {}
    for name in packet.__slots__:
        value = getattr(packet, name)
        if isinstance(value, wire.PathNotifyInfo):
            value = {"seq": value.seq, "path": list(value.path), "sig": value.sig.hex()}
        fields[name] = _hex(value)
    if isinstance(packet, wire.Traffic):
        fields["payload_size"] = len(packet.payload)
        if len(packet.payload) > 96:
            fields["payload"] = packet.payload[:96].hex() + "…"
    return fields


def signatures(packet: wire.Packet, sender: bytes, receiver: bytes) -> list[dict[str, Any]]:
    """Every signature the packet carries: signer, exact signed bytes, and the check."""
    found = []
    if isinstance(packet, wire.SigRes):
        found.append((sender, packet.message(receiver, sender), packet.psig, "psig"))
    elif isinstance(packet, wire.Announce):
        found.append((packet.key, packet.message(), packet.sig, "sig"))
        found.append((packet.parent, packet.message(), packet.psig, "psig"))
    elif isinstance(packet, wire.PathNotify):
        found.append((packet.source, packet.info.message(), packet.info.sig, "info.sig"))
    return [
        {
            "field": field,
            "signer": signer.hex(),
            "message_hex": message.hex(),
            "signature": sig.hex(),
            "verifies": verify(signer, message, sig),
        }
        for signer, message, sig, field in found
    ]


def session_packet(traffic: wire.Traffic, keys: dict[bytes, NodeKey]) -> dict[str, Any] | None:
    """The encrypted-layer packet a traffic frame carries (init/ack opened when we can)."""
    data = traffic.payload
    if not data:
        return None
    kind = data[0]
    out: dict[str, Any] = {"type": kind, "size": len(data)}
    if kind in (session_wire.INIT, session_wire.ACK):
        out["type_name"] = "init" if kind == session_wire.INIT else "ack"
        recipient = keys.get(traffic.dest)
        if recipient is None:
            return out
        try:
            _, init = session_wire.decode_init(data, recipient.x25519_private(), traffic.source)
        except DecodeError as e:
            out["opened"] = False
            out["error"] = str(e)
            return out
        out.update(
            opened=True,
            ephemeral=data[1:33].hex(),
            current=init.current.hex(),
            next=init.next.hex(),
            key_seq=init.key_seq,
            seq=init.seq,
            signature_verifies=True,
        )
    elif kind == session_wire.TRAFFIC:
        out["type_name"] = "traffic"
        try:
            lks, rks, nonce, offset = session_wire.decode_traffic_header(data)
        except DecodeError as e:
            out["error"] = str(e)
        else:
            out.update(local_key_seq=lks, remote_key_seq=rks, nonce=nonce, boxed=len(data) - offset)
    return out


def decode_meta(data: bytes, password: bytes) -> tuple[dict[str, Any], int]:
    """The handshake at the start of a stream and where it ends (0 if none found)."""
    try:
        version = handshake.sniff_version(data[:6])
    except handshake.HandshakeError as e:
        return {"error": str(e)}, 0
    if version is None:
        return {"error": "stream ended inside the handshake"}, 0
    if version == (0, 4):
        return {"version": "0.4", "raw_hex": data[:38].hex(), "key": data[6:38].hex()}, 38
    size = handshake.HEADER_SIZE + handshake.body_length(data[:6])
    if len(data) < size:
        return {"error": "stream ended inside the handshake", "raw_hex": data.hex()}, 0
    meta = handshake.decode_meta(data[:size])
    out: dict[str, Any] = {
        "version": f"{meta.major}.{meta.minor}",
        "raw_hex": data[:size].hex(),
        "length": size - handshake.HEADER_SIZE,
        "public_key": meta.public_key.hex(),
        "priority": meta.priority,
        "signature": meta.signature.hex(),
        "signed_hash": handshake.password_hash(meta.public_key, password).hex(),
        "password": password.decode(),
    }
    try:
        handshake.check_meta(meta, password)
        out["check"] = "ok"
    except handshake.HandshakeError as e:
        out["check"] = str(e)
    return out, size


def decode_direction(
    stream: dict[str, Any],
    password: bytes,
    sender: bytes,
    receiver: bytes,
    keys: dict[bytes, NodeKey],
) -> dict[str, Any]:
    data = bytes(stream["data"])
    meta, pos = decode_meta(data, password)
    out: dict[str, Any] = {"total_bytes": len(data), "meta": meta, "frames": []}
    if not pos or meta.get("version") != "0.5":
        out["trailing_hex"] = data[pos:].hex()
        return out
    reader = wire.FrameReader()
    while pos < len(data):
        try:
            bodies = reader.feed(data[pos : pos + 1])  # byte by byte: exact offsets
        except wire.FrameError as e:
            out["frame_error"] = str(e)
            break
        pos += 1
        for body in bodies:
            start = pos - len(body) - len(wire.put_uvarint(len(body)))
            out["frames"].append(decode_frame(body, start, stream, sender, receiver, keys))
    out["trailing_hex"] = data[pos - reader.pending() :].hex() if reader.pending() else ""
    return out


def decode_frame(
    body: bytes,
    offset: int,
    stream: dict[str, Any],
    sender: bytes,
    receiver: bytes,
    keys: dict[bytes, NodeKey],
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "offset": offset,
        "t": time_at(stream, offset + len(body)),
        "raw_hex": wire.frame(body).hex(),
        "type": body[0],
        "type_name": wire.TYPE_NAMES[body[0]] if body[0] < len(wire.TYPE_NAMES) else "?",
    }
    try:
        packet = wire.decode_body(body)
    except DecodeError as e:
        frame["error"] = str(e)
        return frame
    frame["fields"] = packet_fields(packet)
    frame["reencodes"] = wire.encode_body(packet) == body
    sigs = signatures(packet, sender, receiver)
    if sigs:
        frame["signatures"] = sigs
    if isinstance(packet, wire.Traffic):
        inner = session_packet(packet, keys)
        if inner:
            frame["session"] = inner
    return frame


def dump_links(args: argparse.Namespace) -> list[dict[str, Any]]:
    passwords = {}
    for item in args.password:
        port, _, pw = item.partition("=")
        passwords[int(port)] = pw.encode()
    keys: dict[bytes, NodeKey] = {}
    if args.keys:
        for hexkey in json.loads(Path(args.keys).read_text())["private_keys"].values():
            key = NodeKey(bytes.fromhex(hexkey))
            keys[key.public] = key
    result = []
    for n, conn in enumerate(tcp_connections(args.pcap, set(args.port)), 1):
        password = passwords.get(conn["listener"][1], b"")
        streams = conn["streams"]
        metas = {}
        for end, stream in streams.items():
            meta, _ = decode_meta(bytes(stream["data"]), password)
            metas[end] = bytes.fromhex(meta.get("public_key") or meta.get("key") or "")
        entry: dict[str, Any] = {
            "connection": n,
            "dialer": "{}:{}".format(*conn["dialer"]),
            "listener": "{}:{}".format(*conn["listener"]),
            "listener_password": password.decode(),
            "directions": [],
        }
        for src, dst, name in (
            (conn["dialer"], conn["listener"], "dialer->listener"),
            (conn["listener"], conn["dialer"], "listener->dialer"),
        ):
            stream = streams.get(src, {"data": b"", "at": []})
            decoded = decode_direction(
                stream, password, metas.get(src, b""), metas.get(dst, b""), keys
            )
            entry["directions"].append({"direction": name, **decoded})
        result.append(entry)
    return result


def print_links(result: list[dict[str, Any]], frames: int, size: int) -> None:
    for conn in result:
        print(
            f"=== connection {conn['connection']}: {conn['dialer']} -> {conn['listener']}"
            f" (listener password {conn['listener_password']!r})"
        )
        for side in conn["directions"]:
            meta = side["meta"]
            print(f"--- {side['direction']}: {side['total_bytes']} bytes")
            if "raw_hex" in meta:
                raw = bytes.fromhex(meta["raw_hex"])
                for i in range(0, min(len(raw), size), 16):
                    chunk = raw[i : i + 16]
                    print(f"  {i:04x}  {chunk.hex(' '):<47}")
            if meta.get("version") == "0.5":
                print(
                    f"  # metadata: version {meta['version']}, key {meta['public_key']},"
                    f" priority {meta['priority']}, check: {meta['check']}"
                )
            elif meta.get("version") == "0.4":
                print(f"  # 0.4 metadata (38 bytes), key {meta['key']}")
            else:
                print(f"  # no metadata: {meta.get('error')}")
            for frame in side["frames"][:frames]:
                line = (
                    f"  # +{frame['t']:.3f}s @{frame['offset']} {frame['type_name']}"
                    f" ({len(frame['raw_hex']) // 2} bytes)"
                )
                fields = frame.get("fields", {})
                for name in (
                    "key",
                    "parent",
                    "seq",
                    "nonce",
                    "port",
                    "source",
                    "dest",
                    "path",
                    "from_path",
                    "watermark",
                    "set_bit_count",
                ):
                    if name in fields:
                        value = fields[name]
                        if isinstance(value, str) and len(value) == 64:
                            value = value[:12] + "…"
                        line += f" {name}={value}"
                if "session" in frame:
                    line += f" session={frame['session'].get('type_name')}"
                if "signatures" in frame:
                    ok = all(s["verifies"] for s in frame["signatures"])
                    line += " sigs=" + ("ok" if ok else "BAD")
                if "error" in frame:
                    line += f" ERROR {frame['error']}"
                print(line)
            if len(side["frames"]) > frames:
                print(f"  # … {len(side['frames']) - frames} more frames")
            if side.get("frame_error"):
                print(f"  # frame error: {side['frame_error']}")
        print()


# -- beacons ----------------------------------------------------------------------------------


def dump_beacons(args: argparse.Namespace) -> list[dict[str, Any]]:
    password = (args.password[0] if args.password else "").encode()
    out = []
    t0 = None
    for ts, linktype, packet in read_pcap(args.pcap):
        ip = ip_payload(linktype, packet)
        if ip is None or ip[2] != 17 or len(ip[3]) < 8:
            continue
        sport, dport = struct.unpack("!HH", ip[3][:4])
        if dport != 9001:
            continue
        t0 = ts if t0 is None else t0
        data = ip[3][8:]
        beacon: dict[str, Any] = {
            "t": round(ts - t0, 6),
            "source": f"{ip[0]}:{sport}",
            "dest": f"{ip[1]}:{dport}",
            "raw_hex": data.hex(),
        }
        if len(data) >= 40:
            major, minor = struct.unpack("!HH", data[:4])
            key = data[4:36]
            port, hash_size = struct.unpack("!HH", data[36:40])
            digest = data[40 : 40 + hash_size]
            beacon.update(
                major=major,
                minor=minor,
                public_key=key.hex(),
                port=port,
                hash_size=hash_size,
                hash=digest.hex(),
                hash_matches_password=digest == handshake.password_hash(key, password),
                password=password.decode(),
            )
        out.append(beacon)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pcap")
    parser.add_argument("--port", type=int, action="append", default=[])
    parser.add_argument(
        "--password",
        action="append",
        default=[],
        help="PORT=PASSWORD of a listener (links), or PASSWORD (beacons)",
    )
    parser.add_argument("--keys", help="JSON file with private_keys (opens session inits)")
    parser.add_argument("--beacons", action="store_true", help="decode multicast beacons")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--frames", type=int, default=20, help="frames shown per direction")
    parser.add_argument("--bytes", type=int, default=128, help="metadata bytes shown")
    args = parser.parse_args()
    result = dump_beacons(args) if args.beacons else dump_links(args)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    elif args.beacons:
        for beacon in result:
            print(json.dumps(beacon))
    else:
        print_links(result, args.frames, args.bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
