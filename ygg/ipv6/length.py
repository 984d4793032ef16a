"""An IPv6 packet's payload-length field against its real length, judged as Linux judges a
packet written into a TUN (``ip6_rcv_core``; ``ipv6_hop_jumbo`` for jumbograms).

Seen on Linux 6.18 (and checked by tests/test_ipv6_kernel.py on the running kernel):

* a packet shorter than its header says is dropped (Ip6InTruncatedPkts);
* bytes past the declared end are cut off and the rest is taken;
* a payload length of 0 with a Hop-by-Hop header next is the jumbogram form, left to the
  Jumbo Payload option, which must declare more than 65,535 bytes and have them there: no
  packet here (a TUN read, a mesh packet) is that long, so a packet with one is dropped
  (Ip6InHdrErrors), as is one whose Hop-by-Hop header does not fit.  With no Jumbo option,
  Linux takes such a packet whole, untrimmed (RFC 2675 would refuse it), and so does this.
"""

from __future__ import annotations

IPV6_HEADER = 40
HOP_BY_HOP = 0
PAD1 = 0
JUMBO_PAYLOAD = 0xC2

#: What ``kept_length`` returns for a packet Linux drops, and the drop counters' names.
TRUNCATED = -1
JUMBOGRAM = -2
DROP_REASONS = {TRUNCATED: "truncated", JUMBOGRAM: "jumbogram"}


def kept_length(packet: bytes) -> int:
    """How many bytes of ``packet`` (an IPv6 header at least) Linux keeps: all of them, or
    fewer when bytes trail its declared end; ``TRUNCATED`` or ``JUMBOGRAM`` when it drops it."""
    end = IPV6_HEADER + ((packet[4] << 8) | packet[5])
    if end == IPV6_HEADER and packet[6] == HOP_BY_HOP:
        return _zero_length_hop_by_hop(packet)
    return end if end <= len(packet) else TRUNCATED


def _zero_length_hop_by_hop(packet: bytes) -> int:
    if len(packet) < IPV6_HEADER + 8:
        return TRUNCATED
    header_end = IPV6_HEADER + (packet[IPV6_HEADER + 1] + 1) * 8
    if header_end > len(packet):
        return TRUNCATED
    offset = IPV6_HEADER + 2
    while offset < header_end:
        kind = packet[offset]
        if kind == PAD1:
            offset += 1
            continue
        if kind == JUMBO_PAYLOAD or offset + 1 >= header_end:
            return JUMBOGRAM  # too short to be one, or options that do not parse
        offset += 2 + packet[offset + 1]
    return len(packet) if offset == header_end else JUMBOGRAM
