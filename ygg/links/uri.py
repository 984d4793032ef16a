"""Peer and listener URIs, read exactly as yggdrasil 0.4.7 reads them (spec §2.1, §2.2, §2.9).

The Go node parses with ``net/url`` and then picks the pieces it needs, so this module
carries a faithful reading of Go's URL grammar (zones written ``%25``, opaque forms,
lenient query parsing, the ``parse "…": …`` error text) and then the link-layer rules:
``?key=`` pins, ``?priority=``, ``?sni=``, the SOCKS target in the path, and what v0.5
added (spec-v05 §2.5): ``?password=``, ``?maxbackoff=`` (a Go duration), the ``ws``,
``wss``, ``sockstls`` and ``quic`` schemes, and a WebSocket listener's ``?origin=``
(0.5.14).  The link layer refuses ``quic`` on a node without v0.5, as 0.4.7 does.

Only what Go checks *before* dialing raises here (what ``addPeer`` returns).  Problems
Go meets only while dialing — a missing port, a bad port number — are left for
:mod:`ygg.links.endpoints` to report as dial failures, as the Go node does; the raw
``host_port`` (Go's ``u.Host``) is kept for that and for link identity checks.  Two more
are refused here, where Go would only fail each dial: a unix path longer than a socket
address holds, and a host name the resolver cannot encode (IDNA).
"""

from __future__ import annotations

import binascii
import codecs
import dataclasses
import re
from dataclasses import dataclass

from ygg.errors import YggError
from ygg.keys import PUBLIC_KEY_SIZE
from ygg.links.netutil import go_quote, parse_ip, parse_uint8, split_host_port, split_zone

DIAL_SCHEMES = ("tcp", "tls", "unix", "socks", "sockstls", "ws", "wss", "quic")
LISTEN_SCHEMES = ("tcp", "tls", "unix", "ws", "wss", "quic")
WEBSOCKET_SCHEMES = ("ws", "wss")
V05_SCHEMES = ("ws", "wss", "quic", "sockstls")
"""The schemes 0.5 brought: their links are named as 0.5 names them."""
MIN_MAX_BACKOFF = 30.0
"""The smallest ``?maxbackoff=`` yggdrasil 0.5.12 accepts, in seconds."""
UNIX_PATH_MAX = 107
"""The longest unix socket path in bytes: ``sun_path`` holds 108 with the closing NUL."""

_IDNA = codecs.lookup("idna")
_SURROGATE = re.compile("[\ud800-\udfff]")


class LinkURIError(YggError):
    """A peer or listener URI the Go node refuses; ``str(e)`` is the Go error text."""


class URLParseError(LinkURIError):
    """The URI is not a URL at all (Go's ``url.Parse`` failed): ``parse "…": …``.

    The Go node logs these differently (``Invalid listener URI …``,
    ``Failed to parse peer url: …``), hence the separate type.
    """


@dataclass(frozen=True)
class PeerURI:
    """One parsed peer or listener URI.

    ``host``/``port``/``zone`` name the TCP/TLS peer or, for ``socks``, the proxy; ``path``
    is the unix socket path or the SOCKS target ``host:port``.  ``host_port`` is Go's
    ``u.Host`` as written (brackets kept, zone unescaped), ``url`` Go's re-serialised
    ``u.String()`` (lower-case scheme, zone as ``%25``) — equal to ``text`` in practice.
    """

    text: str
    scheme: str
    host: str
    port: int
    zone: str
    path: str
    username: str | None
    password: str | None
    pinned_keys: frozenset[bytes]
    priority: int
    sni: str
    host_port: str = ""
    url: str = ""
    #: v0.5's link password (``?password=``), as written; checked by the link layer,
    #: since a v0.4-only node ignores it as 0.4.7 does.
    link_password: str = ""
    #: ``?maxbackoff=`` in seconds: the longest wait between a configured peer's dials.
    max_backoff: float | None = None
    #: ws/wss: the HTTP request target (Go's ``RequestURI``: path and query).
    resource: str = "/"
    #: A ws/wss listener's ``?origin=`` host patterns for browsers' Origin (0.5.14).
    origins: tuple[str, ...] = ()

    def server_name(self) -> str | None:
        """The TLS SNI the Go node sends: ``?sni=`` unless an IP literal, else the URL
        host unless an IP literal, else none (§2.2); zones and trailing dots dropped."""
        name = ""
        if self.sni and parse_ip(self.sni) is None:
            name = self.sni
        if not name:
            try:
                host, _ = split_host_port(self.host_port)
            except YggError:
                host = ""
            if parse_ip(host) is None:
                name = host
        return _hostname_in_sni(name) or None

    def host_name(self) -> str | None:
        """The TLS server name of a ``wss://`` dial: the URL host unless an IP literal
        (Go's wss dialer ignores ``?sni=``)."""
        return _hostname_in_sni(self.host) or None

    def link_name(self) -> str:
        """The getPeers ``remote`` of an outbound link (§2.7)."""
        if self.scheme in ("tcp", "tls"):
            return self.url.split("?", 1)[0].rstrip("/")
        if self.scheme in V05_SCHEMES:
            return self.url.split("?", 1)[0]  # v0.5 names links by the URI less its query
        return self.url


def parse_peer_uri(text: str) -> PeerURI:
    """Parse a URI to dial (Peers, InterfacePeers, addPeer, multicast)."""
    text = _go_string(text)
    url = _parse_url(text)
    query = url.query()
    pinned = set()
    for value in query.get("key", []):
        try:
            raw = binascii.unhexlify(value)
        except (binascii.Error, ValueError):
            raise LinkURIError("pinned key contains invalid hex characters") from None
        pinned.add((raw + bytes(PUBLIC_KEY_SIZE))[:PUBLIC_KEY_SIZE])
    priority = 0
    if text_priority := _first(query, "priority"):
        try:
            priority = parse_uint8(text_priority)
        except YggError as e:
            raise LinkURIError(f"priority invalid: {e}") from None
    max_backoff = None
    if text_backoff := _first(query, "maxbackoff"):
        try:
            max_backoff = parse_go_duration(text_backoff) / 1e9
        except ValueError:
            max_backoff = -1.0
        if max_backoff < MIN_MAX_BACKOFF:
            raise LinkURIError("max backoff duration invalid")
    if url.scheme not in DIAL_SCHEMES:
        raise LinkURIError("unknown call scheme: " + url.scheme)
    uri = _build(text, url, frozenset(pinned), priority, _first(query, "sni"))
    return dataclasses.replace(
        uri, link_password=_first(query, "password"), max_backoff=max_backoff
    )


def parse_listen_uri(text: str) -> PeerURI:
    """Parse a ``Listen`` URI: tcp, tls or unix; a bad ``?priority=`` is ignored (§2.9)."""
    text = _go_string(text)
    url = _parse_url(text)
    if url.scheme not in LISTEN_SCHEMES:
        raise LinkURIError(f"unrecognised scheme {go_quote(url.scheme)}")
    priority = 0
    if text_priority := _first(url.query(), "priority"):
        try:
            priority = parse_uint8(text_priority)
        except YggError:
            priority = 0
    uri = _build(text, url, frozenset(), priority, "")
    origins = tuple(o for o in url.query().get("origin", []) if o)
    return dataclasses.replace(uri, link_password=_first(url.query(), "password"), origins=origins)


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_INT64_LIMIT = 1 << 63


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration``, in nanoseconds (``"1h30m"``, ``".5m"``, ``"-2s"``);
    ValueError for what Go refuses (no unit, an unknown unit, overflow)."""
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    while rest:
        if not (rest[0] == "." or "0" <= rest[0] <= "9"):
            raise ValueError(f"invalid duration {text!r}")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        whole = int(rest[:digits]) if digits else 0
        if whole > _INT64_LIMIT:
            raise ValueError(f"invalid duration {text!r}")
        rest = rest[digits:]
        fraction, scale, post = 0, 1.0, False
        if rest[:1] == ".":
            rest = rest[1:]
            count = len(rest) - len(rest.lstrip("0123456789"))
            post = count > 0
            overflow = False
            for ch in rest[:count]:
                # As Go: digits past int64's precision are dropped, not an error.
                if overflow or fraction > (_INT64_LIMIT - 1) // 10:
                    overflow = True
                    continue
                fraction, scale = fraction * 10 + int(ch), scale * 10
            rest = rest[count:]
        if not digits and not post:
            raise ValueError(f"invalid duration {text!r}")
        end = 0
        while end < len(rest) and not (rest[end] == "." or "0" <= rest[end] <= "9"):
            end += 1
        unit = _DURATION_UNITS.get(rest[:end]) if end else None
        if unit is None:
            raise ValueError(f"invalid duration {text!r}")
        rest = rest[end:]
        if whole > _INT64_LIMIT // unit:
            raise ValueError(f"invalid duration {text!r}")
        value = whole * unit
        if fraction:
            value += int(float(fraction) * (float(unit) / scale))
        total += value
        if value > _INT64_LIMIT or total > _INT64_LIMIT:
            raise ValueError(f"invalid duration {text!r}")
    if not negative and total > _INT64_LIMIT - 1:
        raise ValueError(f"invalid duration {text!r}")
    return -total if negative else total


def _go_string(text: str) -> str:
    """``text`` as the Go node holds it.  A JSON or HJSON escape of a lone surrogate
    (``"\\ud800"``, from addPeer or a config file) decodes to U+FFFD in Go but stays a
    surrogate in Python, which no UTF-8 encoding below accepts."""
    return _SURROGATE.sub("\ufffd", text)


def _build(text: str, url: _URL, pinned: frozenset[bytes], priority: int, sni: str) -> PeerURI:
    host, port, zone, path = "", 0, "", ""
    if url.scheme == "unix":
        path = url.path
        _check_unix_path(path)
    else:
        _check_host_name(url.host)
        host, port_text = url.hostname_port()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        host, zone = split_zone(host)
        if port_text and int(port_text) <= 0xFFFF:
            port = int(port_text)
        if url.scheme in ("socks", "sockstls"):
            path = url.path.strip("/").split("/")[0]
    username = password = None
    if url.user is not None:
        username, password = url.user
    resource = "/"
    if url.scheme in WEBSOCKET_SCHEMES:
        resource = _request_uri(url)
    return PeerURI(
        text=text,
        scheme=url.scheme,
        host=host,
        port=port,
        zone=zone,
        path=path,
        username=username,
        password=password,
        pinned_keys=pinned,
        priority=priority,
        sni=sni,
        host_port=url.host,
        url=url.string(),
        resource=resource,
    )


def _request_uri(url: _URL) -> str:
    """Go's ``URL.RequestURI`` (the target of the HTTP upgrade a ws dial sends), less any
    ``password`` parameter: Go sends that too, in clear over ws://, for anyone on the path
    to replay; the server does not read the query."""
    target = url.opaque or url.escaped_path() or "/"
    if url.opaque.startswith("//"):
        target = f"{url.scheme}:{url.opaque}"
    parts = [p for p in url.raw_query.split("&") if not _is_password_param(p)]
    if url.force_query or any(parts):
        target += "?" + "&".join(parts)
    return target


def _is_password_param(part: str) -> bool:
    try:
        return _unescape(part.partition("=")[0], _QUERY_COMPONENT) == "password"
    except YggError:
        return False


def _check_unix_path(path: str) -> None:
    # Go accepts it and fails every dial ("invalid argument"); Twisted fails worse.
    size = len(path.encode("utf-8", "surrogateescape"))
    if size > UNIX_PATH_MAX:
        raise LinkURIError(f"unix socket path too long: {size} bytes, at most {UNIX_PATH_MAX}")


def _check_host_name(host_port: str) -> None:
    """Refuse a host name that the resolver's IDNA encoding refuses: that lookup would
    fail outside any dial, leaving the peer silently dead."""
    try:
        host, _ = split_host_port(host_port)
    except YggError:
        return  # the dial reports it, as Go does
    host, _ = split_zone(host)
    if not host or parse_ip(host) is not None:
        return
    try:
        _IDNA.encode(host)
    except UnicodeError as e:
        reason = str(e).encode("ascii", "backslashreplace").decode()
        reason = reason[:1].lower() + reason[1:]
        raise LinkURIError(f"host {go_quote(host)} is not a valid domain name: {reason}") from None


def _first(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key)
    return values[0] if values else ""


def _hostname_in_sni(name: str) -> str:
    host = name
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    percent = host.rfind("%")
    if percent > 0:
        host = host[:percent]
    if parse_ip(host) is not None:
        return ""
    return name.rstrip(".")


# --- Go's net/url, as far as peer URIs need it ---------------------------------------------

_PATH, _PATH_SEGMENT, _HOST, _ZONE, _USER_PASSWORD, _QUERY_COMPONENT, _FRAGMENT = range(7)

_HOST_EXTRA = frozenset(b"!$&'()*+,;=:[]<>\"")
_RESERVED = frozenset(b"$&+,/:;=?@")
_UNRESERVED_MARKS = frozenset(b"-_.~")


def _should_escape(c: int, mode: int) -> bool:
    if 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A:
        return False
    if mode in (_HOST, _ZONE) and c in _HOST_EXTRA:
        return False
    if c in _UNRESERVED_MARKS:
        return False
    if c in _RESERVED:
        if mode == _PATH:
            return c == 0x3F  # '?'
        if mode == _PATH_SEGMENT:
            return c in b"/;,?"
        if mode == _USER_PASSWORD:
            return c in b"@/?:"
        if mode == _QUERY_COMPONENT:
            return True
        if mode == _FRAGMENT:
            return False
    if mode == _FRAGMENT and c in b"!()*":
        return False
    return True


def _is_hex(c: int) -> bool:
    return 0x30 <= c <= 0x39 or 0x41 <= c <= 0x46 or 0x61 <= c <= 0x66


def _unescape(text: str, mode: int) -> str:
    """Go's ``unescape``: %XX decoding with the host and zone restrictions."""
    data = text.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(data):
        c = data[i]
        if c == 0x25:  # '%'
            if i + 2 >= len(data) or not _is_hex(data[i + 1]) or not _is_hex(data[i + 2]):
                raise YggError("invalid URL escape " + go_quote(_text(data[i : i + 3])))
            triple = data[i : i + 3]
            if mode == _HOST and int(triple[1:2], 16) < 8 and triple != b"%25":
                raise YggError("invalid URL escape " + go_quote(_text(triple)))
            if mode == _ZONE:
                value = int(triple[1:], 16)
                if triple != b"%25" and value != 0x20 and _should_escape(value, _HOST):
                    raise YggError("invalid URL escape " + go_quote(_text(triple)))
            i += 3
        else:
            if mode in (_HOST, _ZONE) and c < 0x80 and _should_escape(c, mode):
                raise YggError(f"invalid character {go_quote(chr(c))} in host name")
            i += 1
    out = bytearray()
    i = 0
    while i < len(data):
        c = data[i]
        if c == 0x25:
            out.append(int(data[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(0x20 if c == 0x2B and mode == _QUERY_COMPONENT else c)
        i += 1
    return _text(bytes(out))


def _escape(text: str, mode: int) -> str:
    out = []
    for c in text.encode("utf-8", "surrogateescape"):
        if c == 0x20 and mode == _QUERY_COMPONENT:
            out.append("+")
        elif _should_escape(c, mode):
            out.append(f"%{c:02X}")
        else:
            out.append(chr(c))
    return "".join(out)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _valid_encoded(text: str, mode: int) -> bool:
    for c in text.encode("utf-8", "surrogateescape"):
        if c in b"!$&'()*+,;=:@[]%":
            continue
        if _should_escape(c, mode):
            return False
    return True


def _valid_optional_port(port: str) -> bool:
    if port == "":
        return True
    return port[0] == ":" and all("0" <= ch <= "9" for ch in port[1:])


_USERINFO_OK = frozenset("-._:~!$&'()*+,;=%@")


def _valid_userinfo(text: str) -> bool:
    return all(ch.isascii() and (ch.isalnum() or ch in _USERINFO_OK) for ch in text)


class _URL:
    """The fields of Go's ``url.URL`` this layer uses."""

    scheme = ""
    opaque = ""
    user: tuple[str, str | None] | None = None
    host = ""
    path = ""
    raw_path = ""
    force_query = False
    raw_query = ""
    fragment = ""
    raw_fragment = ""

    def query(self) -> dict[str, list[str]]:
        """``url.Query()``: malformed pairs are dropped silently."""
        values: dict[str, list[str]] = {}
        for part in self.raw_query.split("&"):
            if ";" in part or not part:
                continue
            key, _, value = part.partition("=")
            try:
                key = _unescape(key, _QUERY_COMPONENT)
                value = _unescape(value, _QUERY_COMPONENT)
            except YggError:
                continue
            values.setdefault(key, []).append(value)
        return values

    def hostname_port(self) -> tuple[str, str]:
        """``url.Hostname()`` with its brackets and ``url.Port()``: lenient, never fails."""
        host, port = self.host, ""
        colon = host.rfind(":")
        if colon >= 0 and _valid_optional_port(host[colon:]):
            host, port = host[:colon], host[colon + 1 :]
        return host, port

    def escaped_path(self) -> str:
        if self.raw_path and _valid_encoded(self.raw_path, _PATH):
            try:
                if _unescape(self.raw_path, _PATH) == self.path:
                    return self.raw_path
            except YggError:
                pass
        if self.path == "*":
            return "*"
        return _escape(self.path, _PATH)

    def escaped_fragment(self) -> str:
        if self.raw_fragment and _valid_encoded(self.raw_fragment, _FRAGMENT):
            try:
                if _unescape(self.raw_fragment, _FRAGMENT) == self.fragment:
                    return self.raw_fragment
            except YggError:
                pass
        return _escape(self.fragment, _FRAGMENT)

    def string(self) -> str:
        """``url.String()``."""
        out = []
        if self.scheme:
            out.append(self.scheme + ":")
        if self.opaque:
            out.append(self.opaque)
        else:
            if self.scheme or self.host or self.user is not None:
                if self.host or self.path or self.user is not None:
                    out.append("//")
                if self.user is not None:
                    name, password = self.user
                    out.append(_escape(name, _USER_PASSWORD))
                    if password is not None:
                        out.append(":" + _escape(password, _USER_PASSWORD))
                    out.append("@")
                if self.host:
                    out.append(_escape(self.host, _HOST))
            path = self.escaped_path()
            if path and not path.startswith("/") and self.host:
                out.append("/")
            if not out and ":" in path.split("/", 1)[0]:
                out.append("./")
            out.append(path)
        if self.force_query or self.raw_query:
            out.append("?" + self.raw_query)
        if self.fragment:
            out.append("#" + self.escaped_fragment())
        return "".join(out)


def _parse_url(raw: str) -> _URL:
    """``url.Parse``; failures raise :class:`URLParseError` with Go's text."""
    before, sep, fragment = raw.partition("#")
    try:
        url = _parse(before)
    except YggError as e:
        raise URLParseError(f"parse {go_quote(before)}: {e}") from None
    if sep and fragment:
        try:
            url.fragment = _unescape(fragment, _FRAGMENT)
        except YggError as e:
            raise URLParseError(f"parse {go_quote(raw)}: {e}") from None
        url.raw_fragment = "" if _escape(url.fragment, _FRAGMENT) == fragment else fragment
    return url


def _parse(raw: str) -> _URL:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise YggError("net/url: invalid control character in URL")
    url = _URL()
    if raw == "*":
        url.path = "*"
        return url
    url.scheme, rest = _get_scheme(raw)
    url.scheme = url.scheme.lower()
    if rest.endswith("?") and rest.count("?") == 1:
        url.force_query = True
        rest = rest[:-1]
    else:
        rest, _, url.raw_query = rest.partition("?")
    if not rest.startswith("/"):
        if url.scheme:
            url.opaque = rest
            return url
        if ":" in rest.split("/", 1)[0]:
            raise YggError("first path segment in URL cannot contain colon")
    if (url.scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, rest = rest[2:], ""
        slash = authority.find("/")
        if slash >= 0:
            authority, rest = authority[:slash], authority[slash:]
        url.user, url.host = _parse_authority(authority)
    url.path = _unescape(rest, _PATH)
    url.raw_path = "" if _escape(url.path, _PATH) == rest else rest
    return url


def _get_scheme(raw: str) -> tuple[str, str]:
    for i, ch in enumerate(raw):
        if ch.isascii() and ch.isalpha():
            continue
        if ch.isascii() and (ch.isdigit() or ch in "+-."):
            if i == 0:
                return "", raw
            continue
        if ch == ":":
            if i == 0:
                raise YggError("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return "", raw
    return "", raw


def _parse_authority(authority: str) -> tuple[tuple[str, str | None] | None, str]:
    at = authority.rfind("@")
    host = _parse_host(authority[at + 1 :] if at >= 0 else authority)
    if at < 0:
        return None, host
    userinfo = authority[:at]
    if not _valid_userinfo(userinfo):
        raise YggError("net/url: invalid userinfo")
    if ":" not in userinfo:
        return (_unescape(userinfo, _USER_PASSWORD), None), host
    name, _, password = userinfo.partition(":")
    return (_unescape(name, _USER_PASSWORD), _unescape(password, _USER_PASSWORD)), host


def _parse_host(host: str) -> str:
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0:
            raise YggError("missing ']' in host")
        colon_port = host[close + 1 :]
        if not _valid_optional_port(colon_port):
            raise YggError(f"invalid port {go_quote(colon_port)} after host")
        zone = host[:close].find("%25")
        if zone >= 0:
            return (
                _unescape(host[:zone], _HOST)
                + _unescape(host[zone:close], _ZONE)
                + _unescape(host[close:], _HOST)
            )
    else:
        colon = host.rfind(":")
        if colon >= 0 and not _valid_optional_port(host[colon:]):
            raise YggError(f"invalid port {go_quote(host[colon:])} after host")
    return _unescape(host, _HOST)
