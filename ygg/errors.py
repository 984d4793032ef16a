"""The exception types of ygg."""


class YggError(Exception):
    """Base class of ygg's own errors."""


class DecodeError(YggError, ValueError):
    """Malformed bytes from the wire: the caller drops the packet or the link, never the node."""


class ConfigError(YggError):
    """A configuration file or value that cannot be used; names the key and the reason."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


class ProbeError(YggError):
    """Why ``INode.probe_peer`` failed: ``kind`` says which way (one of the constants
    below), ``str(e)`` the details (``remote speaks v0.4, not v0.5``)."""

    #: The peer answered, in another protocol version than the one asked (or with a
    #: handshake of a version it does not say, such as 0.3's).
    VERSION = "version"
    #: Its key is not the one the URI pins (``?key=``), or it is this node's own.
    KEY = "key"
    #: It answered, but not with a Yggdrasil handshake that passes the checks (not
    #: Yggdrasil at all, a wrong ``?password=``), or it closed before its handshake.
    HANDSHAKE = "handshake"
    #: No handshake within the time given.
    TIMEOUT = "timeout"
    #: The name, the address or the port could not be reached (the dial's error text).
    UNREACHABLE = "unreachable"

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
