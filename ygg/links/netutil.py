"""Go's address rules and error wording, as the 0.4.7 link code meets them.

Peer URIs, dial failures and link names all surface text that the Go node builds with
``net``, ``strconv`` and ``fmt``: ``address host: missing port in address``,
``[fe80::1%eth0]:9001``, ``parsing "300": value out of range``.  These helpers reproduce
those forms so that logs and admin replies read the same, and hold the address predicates
(``net.ParseIP``, ``IsLinkLocalUnicast``) the link layer decides things with, and which of
a name's addresses a dial goes to (autopeering probes that same address).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from typing import Any

from twisted.internet import error as terror
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IResolutionReceiver
from zope.interface import implementer

from ygg.errors import YggError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
_LINK_LOCAL_V6 = ipaddress.ip_network("fe80::/10")


class AddressError(YggError):
    """A host:port that Go's ``net`` package refuses; ``str(e)`` is Go's text."""


def go_quote(text: str) -> str:
    """``strconv.Quote``: double quotes, Go escapes, printable characters kept."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # a raw byte kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_QUOTE_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def parse_ip(text: str) -> IPAddress | None:
    """``net.ParseIP``: an IPv4 or IPv6 literal without zone or brackets, else None."""
    if not text or "%" in text or "/" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def ip_string(ip: str | IPAddress) -> str:
    """``net.IP.String``: IPv4-mapped IPv6 addresses print as dotted IPv4."""
    if isinstance(ip, str):
        parsed = parse_ip(ip)
        if parsed is None:
            return ip
        ip = parsed
    return str(_unmapped(ip))


def is_link_local_unicast(ip: str | IPAddress) -> bool:
    """``net.IP.IsLinkLocalUnicast``: 169.254.0.0/16 (also IPv4-mapped) or fe80::/10.

    A string may carry a zone (``fe80::1%eth0``); it is ignored.
    """
    if isinstance(ip, str):
        parsed = parse_ip(ip.split("%", 1)[0])
        if parsed is None:
            return False
        ip = parsed
    ip = _unmapped(ip)
    if isinstance(ip, ipaddress.IPv4Address):
        return ip in _LINK_LOCAL_V4
    return ip in _LINK_LOCAL_V6


def join_host_port(host: str, port: int | str) -> str:
    """``net.JoinHostPort``: brackets around any host containing a colon."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def tcp_addr_string(ip: str, port: int, zone: str = "") -> str:
    """``net.TCPAddr.String``: ``1.2.3.4:5``, ``[fe80::1%eth0]:5`` (mapped IPv4 unmapped)."""
    host = ip_string(ip) if ip else ""
    if zone:
        host = f"{host}%{zone}"
    return join_host_port(host, port)


def split_host_port(hostport: str) -> tuple[str, str]:
    """``net.SplitHostPort``: (host, port) with brackets removed; zone kept in the host."""

    def fail(why: str) -> AddressError:
        return AddressError(f"address {hostport}: {why}" if hostport else why)

    colon = hostport.rfind(":")
    if colon < 0:
        raise fail("missing port in address")
    start, after = 0, 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(hostport):
            raise fail("missing port in address")
        if end + 1 != colon:
            if hostport[end + 1] == ":":
                raise fail("too many colons in address")
            raise fail("missing port in address")
        host = hostport[1:end]
        start, after = 1, end + 1
    else:
        host = hostport[:colon]
        if ":" in host:
            raise fail("too many colons in address")
    if "[" in hostport[start:]:
        raise fail("unexpected '[' in address")
    if "]" in hostport[after:]:
        raise fail("unexpected ']' in address")
    return host, hostport[colon + 1 :]


def parse_port(service: str) -> int:
    """The port of a dial or listen address as Go's resolver reads it (empty = 0)."""
    if service == "":
        return 0
    digits = service[1:] if service[0] in "+-" else service
    if not digits or not digits.isascii() or not digits.isdigit():
        raise AddressError(f"lookup tcp/{service}: unknown port")
    value = int(digits)
    if service[0] == "-":
        value = -value
    if not 0 <= value <= 0xFFFF:
        raise AddressError(f"address {service}: invalid port")
    return value


def split_zone(host: str) -> tuple[str, str]:
    """``fe80::1%eth0`` → (``fe80::1``, ``eth0``); no zone → (host, "")."""
    percent = host.rfind("%")
    if percent <= 0:
        return host, ""
    return host[:percent], host[percent + 1 :]


def parse_uint8(text: str) -> int:
    """``strconv.ParseUint(text, 10, 8)``, raising with Go's ``*NumError`` text."""
    value = 0
    for ch in text:
        if not ("0" <= ch <= "9"):
            raise YggError(f"strconv.ParseUint: parsing {go_quote(text)}: invalid syntax")
        value = value * 10 + (ord(ch) - 48)
        if value > 0xFF:
            raise YggError(f"strconv.ParseUint: parsing {go_quote(text)}: value out of range")
    if not text:
        raise YggError(f"strconv.ParseUint: parsing {go_quote(text)}: invalid syntax")
    return value


class SocketCallError(OSError):
    """One socket call failed; ``str(e)`` is Go's ``<call>: <reason>``, e.g.
    ``connect: connection refused`` or ``bind: address already in use``."""

    def __init__(self, call: str, number: int) -> None:
        super().__init__(number, os.strerror(number))
        self.call = call

    def __str__(self) -> str:
        return f"{self.call}: {errno_text(self.errno)}"


def connect_failure_text(error: BaseException) -> str:
    """The reason part of a Go dial error for a failed connect.

    ``connect: connection refused``, ``i/o timeout``, ``connect: no route to host``…
    """
    if isinstance(error, SocketCallError):
        return str(error)
    if isinstance(error, terror.TimeoutError):
        return "i/o timeout"
    os_error = getattr(error, "osError", None)
    if isinstance(os_error, int):
        return "connect: " + errno_text(os_error)
    if isinstance(error, terror.ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(error, OSError) and error.errno is not None:
        return "connect: " + errno_text(error.errno)
    text = getattr(error, "string", None) or str(error)
    return text


def errno_text(number: int) -> str:
    """``strerror`` as Go's ``syscall.Errno`` prints it (lower-case first letter)."""
    text = os.strerror(number)
    return text[:1].lower() + text[1:]


@implementer(IResolutionReceiver)
class _DialAddress:
    """Collects a name's addresses and picks the first IPv4 one, else the first one."""

    def __init__(self, name: str, error: Callable[[str], Exception]) -> None:
        self.name = name
        self.error = error
        self.addresses: list[IPv4Address | IPv6Address] = []
        self.done: Deferred[str] = Deferred()

    def resolutionBegan(self, resolution: object) -> None:
        pass

    def addressResolved(self, address: IPv4Address | IPv6Address) -> None:
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        if self.done.called:
            return
        if not self.addresses:
            self.done.errback(self.error(f"lookup {self.name}: no such host"))
            return
        chosen = next((a for a in self.addresses if isinstance(a, IPv4Address)), None)
        self.done.callback((chosen or self.addresses[0]).host)


def resolve_dial_address(
    reactor: Any, name: str, error: Callable[[str], Exception]
) -> Deferred[str]:
    """The IP a dial to host ``name`` goes to: its first IPv4 address, else its first one.

    Fails with ``error("lookup NAME: no such host")`` when the name has no address.
    """
    receiver = _DialAddress(name, error)
    reactor.nameResolver.resolveHostName(receiver, name, 0)
    return receiver.done
