"""A SOCKS5 client endpoint behaving like Go's ``golang.org/x/net/proxy`` (spec §2.1, §2.4).

The Go node always hands the proxy dialer credentials (possibly empty), so it always offers
"no authentication" and "username/password" (RFC 1929) and lets the proxy choose.  The
target goes to the proxy unresolved: a name as a domain name, an IP literal as an IPv4
or IPv6 address.  Once the proxy reports success, the stream is handed to the caller's
protocol.  Errors read like Go's: ``socks connect tcp PROXY->TARGET: <reason>``.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg.errors import YggError
from ygg.links.netutil import (
    AddressError,
    connect_failure_text,
    go_quote,
    join_host_port,
    parse_ip,
    split_host_port,
)

VERSION = 5
NO_AUTH = 0x00
USERNAME_PASSWORD = 0x02
NO_ACCEPTABLE_METHODS = 0xFF
CONNECT = 0x01
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 0x01, 0x03, 0x04
AUTH_VERSION = 0x01

REPLY_MESSAGES = {
    0x00: "succeeded",
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused",
    0x06: "TTL expired",
    0x07: "command not supported",
    0x08: "address type not supported",
}


class SOCKSError(YggError):
    """A SOCKS dial failed; ``str(e)`` is Go's text, e.g.
    ``socks connect tcp 127.0.0.1:1080->10.0.0.1:9001: unknown error connection refused``.

    ``reason`` is the part after the addresses; ``reply`` the proxy's reply code when it
    refused the CONNECT.
    """

    def __init__(self, message: str, reason: str, reply: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.reply = reply


def reply_message(code: int) -> str:
    return REPLY_MESSAGES.get(code, f"unknown code: {code}")


@implementer(IStreamClientEndpoint)
class SOCKS5ClientEndpoint:
    """Connect through a SOCKS5 proxy reached over ``proxy_endpoint``.

    ``username``/``password`` are sent only if the proxy picks username/password
    authentication; an empty or missing username then fails as in Go
    (``invalid username/password``).  ``proxy_address`` (``host:port``) is only used in
    error messages.  There is no timeout besides the proxy connection's own (as in Go).
    """

    def __init__(
        self,
        reactor: Any,
        proxy_endpoint: IStreamClientEndpoint,
        target_host: str,
        target_port: int,
        username: str | None = None,
        password: str | None = None,
        *,
        proxy_address: str | None = None,
    ) -> None:
        self._reactor = reactor
        self._proxy = proxy_endpoint
        self._host = target_host
        self._port = target_port
        self._username = username or ""
        self._password = password or ""
        self._proxy_address = proxy_address
        self._target_error: str | None = None
        if not 1 <= target_port <= 0xFFFF:
            self._target_error = f"port number out of range {target_port}"

    @classmethod
    def for_target(
        cls,
        reactor: Any,
        proxy_endpoint: IStreamClientEndpoint,
        target: str,
        username: str | None = None,
        password: str | None = None,
        *,
        proxy_address: str | None = None,
    ) -> SOCKS5ClientEndpoint:
        """An endpoint for a ``host:port`` target string (a ``socks://`` URL's path).

        A target Go cannot split fails as in Go: after the proxy connection is made,
        with the reason alone (``socks connect tcp: address x: missing port in address``).
        """
        problem: str | None = None
        try:
            host, port_text = split_host_port(target)
            port = _atoi(port_text)
            if not 1 <= port <= 0xFFFF:
                problem = f"port number out of range {port_text}"
        except (AddressError, ValueError) as e:
            host, port, problem = target, 0, str(e)
        endpoint = cls(
            reactor, proxy_endpoint, host, port, username, password, proxy_address=proxy_address
        )
        endpoint._target_error = problem
        return endpoint

    def _error(self, reason: str, reply: int | None = None) -> Failure:
        text = "socks connect tcp"
        if self._target_error is None:  # Go names both ends only if the target parses
            if self._proxy_address:
                text += f" {self._proxy_address}->"
            else:
                text += " "
            text += join_host_port(self._host, self._port)
        return Failure(SOCKSError(f"{text}: {reason}", reason, reply))

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        state: dict[str, Any] = {"negotiator": None}

        def cancel(result: Deferred[IProtocol]) -> None:
            negotiator = state["negotiator"]
            if negotiator is None:
                proxy_connecting.cancel()
            elif negotiator.transport is not None:
                negotiator.transport.abortConnection()

        result: Deferred[IProtocol] = Deferred(cancel)

        def build(addr: object) -> _Negotiator:
            state["negotiator"] = _Negotiator(self, protocolFactory, result)
            return state["negotiator"]

        factory = Factory()
        factory.noisy = False  # no "Starting factory" line at info for every dial
        factory.buildProtocol = build  # type: ignore[method-assign]

        def proxy_failed(failure: Failure) -> None:
            if result.called:
                return
            if failure.check(CancelledError, ConnectingCancelledError):
                return
            if isinstance(failure.value, YggError):  # already a Go-style dial error
                reason = str(failure.value)
            else:
                where = f"dial tcp {self._proxy_address}" if self._proxy_address else "dial tcp"
                reason = f"{where}: {connect_failure_text(failure.value)}"
            result.errback(self._error(reason))

        proxy_connecting = self._proxy.connect(factory)
        proxy_connecting.addErrback(proxy_failed)
        return result


def _atoi(text: str) -> int:
    """``strconv.Atoi`` for a port: optional sign, decimal digits."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    return int(text)


def _connect_request(host: str, port: int) -> bytes:
    ip = parse_ip(host)
    if ip is not None:
        if ip.version == 6 and ip.ipv4_mapped is not None:  # type: ignore[union-attr]
            ip = ip.ipv4_mapped  # type: ignore[union-attr]
        address = bytes((ATYP_IPV4 if ip.version == 4 else ATYP_IPV6,)) + ip.packed
    else:
        name = host.encode("utf-8", "surrogateescape")
        if len(name) > 255:
            raise ValueError("FQDN too long")
        address = bytes((ATYP_DOMAIN, len(name))) + name
    return bytes((VERSION, CONNECT, 0)) + address + struct.pack(">H", port)


class _Negotiator(Protocol):
    """Speaks SOCKS5 on the proxy connection, then relays to the caller's protocol."""

    def __init__(
        self,
        endpoint: SOCKS5ClientEndpoint,
        factory: IProtocolFactory,
        result: Deferred[IProtocol],
    ) -> None:
        self._endpoint = endpoint
        self._factory = factory
        self._result = result
        self._buffer = b""
        self._stage = "method"
        self._wrapped: IProtocol | None = None

    def connectionMade(self) -> None:
        if self._endpoint._target_error is not None:
            self._give_up(self._endpoint._target_error)
            return
        self.transport.write(bytes((VERSION, 2, NO_AUTH, USERNAME_PASSWORD)))

    def dataReceived(self, data: bytes) -> None:
        if self._wrapped is not None:
            self._wrapped.dataReceived(data)
            return
        self._buffer += data
        try:
            self._advance()
        except _Refused as e:
            self._give_up(e.reason, e.reply)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._wrapped is not None:
            self._wrapped.connectionLost(reason)
            return
        if not self._result.called:
            self._give_up("unexpected EOF" if self._buffer else "EOF")

    def _give_up(self, reason: str, reply: int | None = None) -> None:
        self._stage = "failed"
        if self.transport is not None:
            self.transport.loseConnection()
        if not self._result.called:
            self._result.errback(self._endpoint._error(reason, reply))

    def _take(self, size: int) -> bytes | None:
        if len(self._buffer) < size:
            return None
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken

    def _advance(self) -> None:
        while True:
            if self._stage == "method":
                answer = self._take(2)
                if answer is None:
                    return
                self._check_version(answer[0])
                self._choose(answer[1])
            elif self._stage == "auth":
                answer = self._take(2)
                if answer is None:
                    return
                if answer[0] != AUTH_VERSION:
                    raise _Refused("invalid username/password version")
                if answer[1] != 0:
                    raise _Refused("username/password authentication failed")
                self._send_request()
            elif self._stage == "reply":
                if not self._reply_complete():
                    return
                self._connected()
                return
            else:
                return

    def _check_version(self, version: int) -> None:
        if version != VERSION:
            raise _Refused(f"unexpected protocol version {version}")

    def _choose(self, method: int) -> None:
        if method == NO_ACCEPTABLE_METHODS:
            raise _Refused("no acceptable authentication methods")
        if method == NO_AUTH:
            self._send_request()
        elif method == USERNAME_PASSWORD:
            user = self._endpoint._username.encode("utf-8")
            password = self._endpoint._password.encode("utf-8")
            if not user or len(user) > 255 or len(password) > 255:
                raise _Refused("invalid username/password")
            self.transport.write(
                bytes((AUTH_VERSION, len(user))) + user + bytes((len(password),)) + password
            )
            self._stage = "auth"
        else:
            raise _Refused(f"unsupported authentication method {method}")

    def _send_request(self) -> None:
        try:
            request = _connect_request(self._endpoint._host, self._endpoint._port)
        except ValueError as e:
            raise _Refused(str(e)) from None
        self.transport.write(request)
        self._stage = "reply"

    def _reply_complete(self) -> bool:
        """Check the CONNECT reply; True (and consumed) once all of it is in."""
        if len(self._buffer) < 4:
            return False
        version, reply, reserved, kind = self._buffer[:4]
        self._check_version(version)
        if reply != 0:
            raise _Refused("unknown error " + reply_message(reply), reply)
        if reserved != 0:
            raise _Refused("non-zero reserved field")
        if kind == ATYP_IPV4:
            size = 4 + 4 + 2
        elif kind == ATYP_IPV6:
            size = 4 + 16 + 2
        elif kind == ATYP_DOMAIN:
            if len(self._buffer) < 5:
                return False
            size = 5 + self._buffer[4] + 2
        else:
            raise _Refused(f"unknown address type {kind}")
        return self._take(size) is not None

    def _connected(self) -> None:
        self._stage = "done"
        wrapped = self._factory.buildProtocol(self.transport.getPeer())
        if wrapped is None:
            self._give_up("protocol factory refused the connection")
            return
        self._wrapped = wrapped
        wrapped.makeConnection(self.transport)
        self._result.callback(wrapped)
        leftover, self._buffer = self._buffer, b""
        if leftover:
            wrapped.dataReceived(leftover)


class _Refused(Exception):
    def __init__(self, reason: str, reply: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply
