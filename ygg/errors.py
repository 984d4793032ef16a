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
