"""The node's configuration: yggdrasil 0.4.7's HJSON/JSON file plus the features' sections.

Everything that reads configuration goes through here (ARCHITECTURE rule 6).  A file is
parsed as HJSON (JSON is HJSON too), key names match case-insensitively as Go's decoders
do, missing keys keep their defaults (a missing PrivateKey means a fresh identity), and the
result is a tree of frozen dataclasses.  Anything unusable raises ``ConfigError`` naming
the key and the reason; keys a schema does not know are returned as warnings
(``AdminShell.Lisen: unknown key``).  Top-level sections are kept as parsed for the
features, which declare them (this module names none) and are reported by the node when
no feature claims them.

A section's schema is a frozen dataclass whose fields carry their config-file name
(``setting("Name", default)``); ``parse_section`` turns a mapping into it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ygg.errors import ConfigError
from ygg.keys import PRIVATE_KEY_SIZE, PUBLIC_KEY_SIZE, NodeKey

#: Debian's build of 0.4.7 listens here, and its yggdrasilctl looks here first.
DEFAULT_ADMIN_LISTEN = "unix:///var/run/yggdrasil/yggdrasil.sock"
DEFAULT_IF_MTU = 65535
MAX_IF_MTU = 65535
MIN_IF_MTU = 1280
#: Linux's IFNAMSIZ (16) less the terminating NUL.
MAX_IF_NAME = 15
#: Deeper nesting than this in a config file is refused (NodeInfo is the only free-form
#: part; Go's decoder allows 10,000 levels, but nothing real nests more than a few).
MAX_DEPTH = 100


def setting(name: str, default: Any = dataclasses.MISSING, *, factory: Any = None, **limits: Any):
    """A dataclass field read from the config key ``name`` (``min``/``max`` bound integers)."""
    metadata = {"key": name, **limits}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


#: The protocol versions a node can run (ProtocolVersions), all on by default.
PROTOCOL_VERSIONS = ("0.4", "0.5")
#: The longest v0.5 link password in bytes (BLAKE2b's longest key).
MAX_PASSWORD = 64

# --------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class MulticastInterface:
    regex: str = setting("Regex", ".*")
    beacon: bool = setting("Beacon", False)
    listen: bool = setting("Listen", False)
    port: int = setting("Port", 0, min=0, max=65535)
    #: Go reads a uint64 and keeps the low 8 bits (300 becomes 44).
    priority: int = setting("Priority", 0, min=0, wrap=256)
    #: v0.5's link password for this interface's beacons and links (0.5.12's key; written
    #: out only when set, so a 0.4.7 config stays as 0.4.7 writes it).
    password: str = setting("Password", "", omitempty=True)


# The first entry is decoded onto the default entry in Go, so it inherits Beacon and Listen.
_DEFAULT_MULTICAST = MulticastInterface(".*", True, True, 0, 0)


@dataclass(frozen=True)
class AdminAMPConfig:
    #: A Twisted server endpoint string, e.g. ``tcp:port=9002:interface=\:\:1``; empty = off.
    listen: str = setting("Listen", "")


@dataclass(frozen=True)
class AdminShellConfig:
    #: A Twisted server endpoint string, e.g. ``tcp:port=9022:interface=\:\:1``; empty = off.
    listen: str = setting("Listen", "")
    host_key_file: str = setting("HostKeyFile", "/var/lib/ygg/ssh_host_ed25519_key")
    authorized_keys_file: str = setting("AuthorizedKeysFile", "/etc/ygg/authorized_keys")


#: Loopback only, unless the user says otherwise.
DEFAULT_METRICS_LISTEN = "[::1]:9464"


@dataclass(frozen=True)
class MetricsConfig:
    """``Metrics``: the Prometheus endpoint (docs/metrics.md), off unless enabled."""

    enable: bool = setting("Enable", False)
    #: host:port as Go writes it: ``[::1]:9464``, ``127.0.0.1:9464``, ``:9464`` (all).
    listen: str = setting("Listen", DEFAULT_METRICS_LISTEN)

    @property
    def address(self) -> tuple[str, int]:
        return parse_host_port(self.listen, "Metrics.Listen")


def parse_host_port(text: str, key: str) -> tuple[str, int]:
    """``host:port`` as Go's net package reads a listen address, the host an IP literal
    (IPv6 in brackets) or empty for every interface ("::"); ConfigError naming ``key``."""
    import ipaddress

    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(key, f"expected host:port such as [::1]:9464, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ConfigError(key, f"brackets are for IPv6 addresses, got {text!r}")
    elif ":" in host:
        raise ConfigError(key, f"an IPv6 address needs brackets, [{host}]:{port}")
    if not host:
        return "::", int(port)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(key, f"{host!r} is not an IP address (names are not resolved)") from None
    return host, int(port)


@dataclass(frozen=True)
class NodeConfig:
    peers: tuple[str, ...] = setting("Peers", ())
    interface_peers: Mapping[str, tuple[str, ...]] = setting("InterfacePeers", factory=dict)
    listen: tuple[str, ...] = setting("Listen", ())
    admin_listen: str = setting("AdminListen", DEFAULT_ADMIN_LISTEN)
    multicast_interfaces: tuple[MulticastInterface, ...] = setting(
        "MulticastInterfaces", (_DEFAULT_MULTICAST,)
    )
    allowed_public_keys: tuple[str, ...] = setting("AllowedPublicKeys", ())
    public_key: str = setting("PublicKey", "")
    private_key: str = setting("PrivateKey", "")
    if_name: str = setting("IfName", "auto")
    if_mtu: int = setting("IfMTU", DEFAULT_IF_MTU, min=0)
    node_info_privacy: bool = setting("NodeInfoPrivacy", False)
    node_info: Mapping[str, Any] | None = setting("NodeInfo", None)
    # ygg's own admin front doors beside the JSON socket; each is off by default.
    admin_amp: AdminAMPConfig = setting("AdminAMP", factory=AdminAMPConfig)
    admin_shell: AdminShellConfig = setting("AdminShell", factory=AdminShellConfig)
    metrics: MetricsConfig = setting("Metrics", factory=MetricsConfig)
    #: Which protocol versions the node speaks, "0.4" and/or "0.5" (ygg's own key).
    protocol_versions: tuple[str, ...] = setting("ProtocolVersions", PROTOCOL_VERSIONS)
    #: 0.5.12's key for its admin ``lookups`` record, which ygg does not keep: read, and
    #: ignored with a warning when true; written out only when the file has it.
    log_lookups: bool = setting("LogLookups", False, omitempty=True)
    #: 0.5.14's session group password: v0.5 sessions only with nodes that have the same.
    group_password: str = setting("GroupPassword", "")
    #: Top-level sections no schema above knows (the features' sections), as parsed.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Canonical names of the keys the file actually held (normaliseconf keeps only those
    #: sections that are not yggdrasil's own).
    present: frozenset[str] = field(default_factory=frozenset)

    @property
    def key(self) -> NodeKey:
        return NodeKey(bytes.fromhex(self.private_key))

    def section(self, name: str, schema: type[Any], unknown: list[str] | None = None) -> Any:
        """A feature's section parsed with its schema (defaults when absent); keys the
        schema does not know are added to ``unknown`` as warning lines."""
        raw = _find(self.extra, name)
        return parse_section(schema, raw if raw is not None else {}, name, unknown)

    def with_section(self, name: str, data: Mapping[str, Any]) -> NodeConfig:
        """A copy with the top-level section ``name`` replaced by ``data`` (plain data)."""
        extra = {k: v for k, v in self.extra.items() if k.lower() != name.lower()}
        extra[name] = data
        return dataclasses.replace(
            self, extra=types.MappingProxyType(extra), present=self.present | {name}
        )


#: yggdrasil's own keys, in the order its genconf writes them.
CORE_KEYS = (
    "Peers",
    "InterfacePeers",
    "Listen",
    "AdminListen",
    "MulticastInterfaces",
    "AllowedPublicKeys",
    "PublicKey",
    "PrivateKey",
    "IfName",
    "IfMTU",
    "NodeInfoPrivacy",
    "NodeInfo",
)


# --------------------------------------------------------------------------- parsing


def _find(mapping: Mapping[str, Any], name: str) -> Any:
    for key, value in mapping.items():
        if key.lower() == name.lower():
            return value
    return None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _convert(
    hint: Any, value: Any, path: str, meta: Mapping[str, Any], unknown: list[str] | None = None
) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return _convert(hint, value, path, meta, unknown)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {_describe(value)}")
        if "min" in meta and value < meta["min"]:
            raise ConfigError(path, f"must be at least {meta['min']}, got {value}")
        if "max" in meta and value > meta["max"]:
            raise ConfigError(path, f"must be at most {meta['max']}, got {value}")
        if "wrap" in meta:
            value %= meta["wrap"]
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_describe(value)}")
        if "choices" in meta and value.lower() not in meta["choices"]:
            raise ConfigError(path, f"must be one of {', '.join(meta['choices'])}, got {value!r}")
        return value.lower() if "choices" in meta else value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {_describe(value)}")
        return tuple(_convert(args[0], v, f"{path}[{i}]", {}, unknown) for i, v in enumerate(value))
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected an object, got {_describe(value)}")
        return types.MappingProxyType(
            {str(k): _convert(args[1], v, f"{path}.{k}", {}, unknown) for k, v in value.items()}
        )
    if dataclasses.is_dataclass(hint):
        return parse_section(hint, value, path, unknown)
    raise TypeError(f"unsupported config type {hint!r} at {path}")


def parse_section(schema: type[Any], raw: Any, path: str, unknown: list[str] | None = None) -> Any:
    """Build the frozen dataclass ``schema`` from parsed data; keys match case-insensitively.

    Keys the schema (or a nested one) does not know are ignored, as Go's decoder does, and
    listed in ``unknown`` as ``Path.Key: unknown key`` when a list is given.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(path, f"expected an object, got {_describe(raw)}")
    hints = typing.get_type_hints(schema)
    values: dict[str, Any] = {}
    keys = {f.metadata["key"].lower() for f in dataclasses.fields(schema) if "key" in f.metadata}
    if unknown is not None and path:
        unknown.extend(f"{path}.{k}: unknown key" for k in raw if str(k).lower() not in keys)
    for f in dataclasses.fields(schema):
        name = f.metadata.get("key")
        if name is None:
            continue
        if not _has(raw, name):
            continue
        raw_value = _find(raw, name)
        hint = hints[f.name]
        if raw_value is None:
            # Go's JSON decoding: null empties a list, map or pointer and leaves others as they are.
            origin = typing.get_origin(hint)
            if origin in (typing.Union, types.UnionType):
                values[f.name] = None
            elif origin is tuple:
                values[f.name] = ()
            elif origin in (Mapping, dict):
                values[f.name] = types.MappingProxyType({})
            continue
        where = f"{path}.{name}" if path else name
        values[f.name] = _convert(hint, raw_value, where, f.metadata, unknown)
    return schema(**values)


def override(section: Any, values: Mapping[str, Any], source: str) -> Any:
    """A copy of a parsed section with some keys (file names) set, e.g. from the command line.

    A string given for a number or a boolean is read as the command line writes them
    (``--port 53``, ``--flag=false``)."""
    hints = typing.get_type_hints(type(section))
    changes: dict[str, Any] = {}
    for key, value in values.items():
        for f in dataclasses.fields(section):
            if f.metadata.get("key", "").lower() == key.lower():
                value = _from_text(hints[f.name], value)
                changes[f.name] = _convert(hints[f.name], value, source, f.metadata)
                break
        else:
            raise ConfigError(source, f"sets {key}, which {type(section).__name__} does not have")
    return dataclasses.replace(section, **changes)


def _from_text(hint: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if hint is int and re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if hint is bool and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def _has(mapping: Mapping[str, Any], name: str) -> bool:
    return any(k.lower() == name.lower() for k in mapping)


def _decode_text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise OverflowError(text)  # as hjson does
    return value


def _not_json(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")  # NaN, Infinity: hjson reads them as strings


def _loads(text: str) -> Any:
    """The file's data: JSON is read by the stdlib; anything else by hjson, which is then
    dropped from ``sys.modules`` so that its ~1 MiB of code does not stay for the node's
    lifetime (nothing else in a running node uses it)."""
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_not_json)
    except (ValueError, RecursionError):
        pass  # not JSON (or JSON too deep): hjson reads it or says what is wrong
    loaded = "hjson" in sys.modules
    import hjson

    try:
        return hjson.loads(text)
    finally:
        if not loaded:
            for name in [n for n in sys.modules if n == "hjson" or n.startswith("hjson.")]:
                del sys.modules[name]


def read_data(data: bytes | str) -> Any:
    """A config file's contents as plain data, before any key is read (what ``parse``
    reads; ``ygg doctor`` compares it with normaliseconf's output).  Raises what the
    decoders raise: UnicodeDecodeError, ValueError, IndexError, OverflowError,
    RecursionError."""
    return _loads(_decode_text(data))


def parse(data: bytes | str) -> tuple[NodeConfig, list[str]]:
    """Parse a config file's contents; returns the config and warnings (unknown keys…)."""
    try:
        raw = read_data(data)
    except UnicodeDecodeError as e:
        raise ConfigError("", f"the file is not UTF-8 or UTF-16 text ({e.reason})") from None
    except ValueError as e:
        raise ConfigError("", f"not valid HJSON or JSON: {e}") from None
    except IndexError:  # hjson 3.1 reads past the end of an unclosed comment or ''' string
        raise ConfigError("", "not valid HJSON or JSON: the text ends too early") from None
    except OverflowError:
        raise ConfigError("", "not valid HJSON or JSON: a number is too large") from None
    except RecursionError:
        raise ConfigError("", f"nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(raw, Mapping):
        raise ConfigError("", f"the file must hold an object, not {_describe(raw)}")
    _check_depth(raw)
    return from_mapping(_go_strings(raw))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _go_strings(value: Any) -> Any:
    """``value`` with its strings (keys too) as Go's decoder reads them: an escaped lone
    surrogate (``"\\ud800"``) is U+FFFD there, while Python keeps a surrogate that no
    UTF-8 encoding accepts.  Called after :func:`_check_depth`, so its depth is bounded."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_go_strings(k): _go_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_strings(v) for v in value]
    return value


def _check_depth(raw: Mapping[str, Any]) -> None:
    """ConfigError naming the top-level key whose value nests deeper than MAX_DEPTH
    (checked without recursion, so the check itself cannot overflow the stack)."""
    for key, top in raw.items():
        stack: list[tuple[Any, int]] = [(top, 1)]
        while stack:
            value, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise ConfigError(str(key), f"nested more than {MAX_DEPTH} levels deep")
            if isinstance(value, Mapping):
                stack.extend((v, depth + 1) for v in value.values())
            elif isinstance(value, list):
                stack.extend((v, depth + 1) for v in value)


def load_config(path: str | None = None, *, stdin: bool = False) -> NodeConfig:
    """The config from the file ``path``, or from standard input with ``stdin``;
    ConfigError names the key and the reason."""
    if path:
        cfg, _ = load(path)
    elif stdin:
        import sys

        cfg, _ = parse(sys.stdin.buffer.read())
    else:
        raise ConfigError("", "give a config with --useconffile FILE or --useconf (stdin)")
    return cfg


def from_mapping(raw: Mapping[str, Any]) -> tuple[NodeConfig, list[str]]:
    known = {
        f.metadata["key"].lower(): f.metadata["key"]
        for f in dataclasses.fields(NodeConfig)
        if "key" in f.metadata
    }
    extra = {k: v for k, v in raw.items() if k.lower() not in known}
    present = frozenset(known[k.lower()] for k in raw if k.lower() in known)
    warnings: list[str] = []
    cfg = parse_section(NodeConfig, raw, "", warnings)
    if len(cfg.if_name.encode()) > MAX_IF_NAME:
        raise ConfigError(
            "IfName", f"{cfg.if_name!r} is longer than the {MAX_IF_NAME} bytes Linux allows"
        )

    first = _find(raw, "MulticastInterfaces")
    if isinstance(first, list) and first and isinstance(first[0], Mapping):
        # Go decodes the list onto its default, so the first entry keeps Beacon/Listen true.
        merged = dict(first[0])
        for name in ("Beacon", "Listen"):
            if not _has(merged, name):
                merged[name] = True
        head = parse_section(MulticastInterface, merged, "MulticastInterfaces[0]")
        cfg = dataclasses.replace(cfg, multicast_interfaces=(head, *cfg.multicast_interfaces[1:]))
    for i, entry in enumerate(cfg.multicast_interfaces):
        try:
            re.compile(entry.regex)
        except (re.error, OverflowError, RecursionError) as e:  # a{99999999999}, ((((…
            raise ConfigError(
                f"MulticastInterfaces[{i}].Regex", f"not a valid regex: {e}"
            ) from None
        if len(entry.password.encode()) > MAX_PASSWORD:
            raise ConfigError(
                f"MulticastInterfaces[{i}].Password", f"longer than {MAX_PASSWORD} bytes"
            )
    if cfg.log_lookups:
        warnings.append(
            "LogLookups is read but ignored: ygg keeps no record of lookups (0.5.12's "
            "admin lookups method)"
        )
    versions = cfg.protocol_versions
    if not versions or any(v not in PROTOCOL_VERSIONS for v in versions):
        raise ConfigError(
            "ProtocolVersions", f'must list "0.4", "0.5" or both, got {json.dumps(list(versions))}'
        )
    parse_host_port(cfg.metrics.listen, "Metrics.Listen")  # an error whether on or off

    if not cfg.private_key:
        key = NodeKey.generate()
        cfg = dataclasses.replace(cfg, private_key=key.private.hex())
        if "PublicKey" not in present:
            cfg = dataclasses.replace(cfg, public_key=key.public.hex())
    try:
        private = bytes.fromhex(cfg.private_key)
    except ValueError:
        raise ConfigError("PrivateKey", "not a hexadecimal string") from None
    if len(private) != PRIVATE_KEY_SIZE:
        raise ConfigError(
            "PrivateKey",
            f"must be {2 * PRIVATE_KEY_SIZE} hex digits (seed, then public key), "
            f"not {len(cfg.private_key)}",
        )
    if "PublicKey" not in present:
        cfg = dataclasses.replace(cfg, public_key=private[32:].hex())
    for i, text in enumerate(cfg.allowed_public_keys):
        try:
            allowed = bytes.fromhex(text)
        except ValueError:
            raise ConfigError(f"AllowedPublicKeys[{i}]", "not a hexadecimal string") from None
        if len(allowed) != PUBLIC_KEY_SIZE:
            warnings.append(
                f"AllowedPublicKeys[{i}]: {text!r} is not a {PUBLIC_KEY_SIZE}-byte key and "
                "will never match"
            )
    if cfg.node_info is not None and not isinstance(cfg.node_info, Mapping):
        raise ConfigError("NodeInfo", f"expected an object or null, got {_describe(cfg.node_info)}")
    return dataclasses.replace(cfg, extra=types.MappingProxyType(extra), present=present), warnings


def load(path: str) -> tuple[NodeConfig, list[str]]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError("", f"cannot read {path}: {e.strerror}") from None
    return parse(data)


def generate() -> NodeConfig:
    """A fresh configuration with a new key, as ``genconf`` and ``-autoconf`` make it."""
    cfg, _ = from_mapping({})
    return cfg


def effective_mtu(if_mtu: int, maximum: int) -> int:
    """IfMTU clamped as the Go node does: never above what the link carries, never below 1280."""
    return max(MIN_IF_MTU, min(if_mtu, maximum, MAX_IF_MTU))


# --------------------------------------------------------------------------- output


def _plain(value: Any) -> Any:
    """Plain JSON-able data for a config value (dataclasses become their file-key objects)."""
    if dataclasses.is_dataclass(value):
        return {
            f.metadata["key"]: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if "key" in f.metadata
            and not (f.metadata.get("omitempty") and not getattr(value, f.name))
        }
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Section:
    """A top-level section declared outside this module (a feature's): its name, schema
    and the comment genconf writes above it."""

    name: str
    schema: type[Any]
    comment: str = ""


def to_data(
    cfg: NodeConfig, *, sections: str = "present", declared: Sequence[Section] = ()
) -> dict[str, Any]:
    """The config as plain data, yggdrasil's keys first in genconf order.

    ``sections``: "all" adds every built-in and declared section with its defaults,
    "present" only those the file held.  Declared sections are normalised by their schema;
    other unknown sections are kept as they were read.
    """
    data: dict[str, Any] = {}
    by_key = {
        f.metadata["key"]: f.name for f in dataclasses.fields(NodeConfig) if "key" in f.metadata
    }
    omitted = {
        f.metadata["key"] for f in dataclasses.fields(NodeConfig) if f.metadata.get("omitempty")
    }
    for key, name in by_key.items():
        if key in omitted and key not in cfg.present and not getattr(cfg, name):
            continue  # as Go's omitempty: a key 0.5.12's genconf leaves out
        if key in CORE_KEYS or sections == "all" or key in cfg.present:
            data[key] = _plain(getattr(cfg, name))
    for section in declared:
        raw = _find(cfg.extra, section.name)
        if raw is not None or sections == "all":
            data[section.name] = _plain(cfg.section(section.name, section.schema))
    names = {section.name.lower() for section in declared}
    data.update({k: _plain(v) for k, v in cfg.extra.items() if k.lower() not in names})
    return data


def to_json(cfg: NodeConfig, *, sections: str = "present", declared: Sequence[Section] = ()) -> str:
    # Go's json.MarshalIndent escapes <, > and & in strings; so do we.
    data = to_data(cfg, sections=sections, declared=declared)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


COMMENTS: dict[str, str] = {
    "Peers": """Peers to connect to, as URIs: tcp://host:port, tls://host:port,
unix:///path or socks://proxyhost:port/host:port. Add ?key=<hex> to insist
on a public key, ?priority=N to prefer a link (lower is preferred), and
?sni=name for tls. Dialled through the operating system's routing table.""",
    "InterfacePeers": """Peers to connect to through a given network interface, e.g.
{ "eth0": [ "tls://a.b.c.d:e" ] }. socks:// peers belong in Peers.""",
    "Listen": """Addresses to accept peer connections on, as URIs such as
tls://[::]:0 (all interfaces, a free port), tcp://0.0.0.0:12345 or
unix:///run/ygg-peer.sock. Multicast discovery does not need these.""",
    "AdminListen": """Where the admin socket listens: unix:///path or tcp://localhost:port.
yggdrasilctl and `ygg ctl` talk to it (-endpoint=...). "none" turns it off.""",
    "MulticastInterfaces": """Which interfaces find peers on the local network by multicast. Each
entry: Regex (matched against interface names; the first matching entry
applies), Beacon (announce this node), Listen (answer others' beacons),
Port (the TLS port to listen on, 0 = any) and Priority (of those links).""",
    "AllowedPublicKeys": """If not empty, only peers with these public keys may connect to us.
Outgoing connections and link-local (multicast) peers are not affected.""",
    "PublicKey": """This node's public key, for your peers' AllowedPublicKeys. Derived from
PrivateKey; the node does not read it.""",
    "PrivateKey": """This node's private key (seed followed by public key). Keep it secret:
whoever has it can be this node.""",
    "IfName": """Name of the TUN interface, "auto" to let the system pick one, or "none"
to run without one.""",
    "IfMTU": """MTU of the TUN interface. The largest useful value is 53049; the
smallest allowed is 1280.""",
    "NodeInfoPrivacy": """Leave out the build name, version, platform and architecture from
the NodeInfo this node gives to whoever asks.""",
    "NodeInfo": """Anything you want others to see when they ask this node for its
NodeInfo, as an object, e.g. { name: "my node" }. Visible to the whole network.""",
    "AdminAMP": """An AMP admin endpoint for Python tools, as a Twisted endpoint string,
e.g. tcp:port=9002:interface=\\:\\:1. Empty: off.""",
    "AdminShell": """An SSH admin shell (public-key login only) on a Twisted endpoint
string, e.g. tcp:port=9022:interface=\\:\\:1. Empty Listen: off.""",
    "GroupPassword": """v0.5 traffic only to and from nodes with the same group password (0.5.14's
key). Empty: anyone. Peering and routing are not affected.""",
    "Metrics": """Prometheus metrics (docs/metrics.md): Enable serves /metrics on Listen, a
host:port such as "[::1]:9464" (loopback). Off by default.""",
    "ProtocolVersions": """Which yggdrasil protocols this node speaks: "0.4", "0.5" or both (each
link speaks its peer's). With one, the node peers as that version's Go node.""",
}


def to_hjson(
    cfg: NodeConfig, *, sections: str = "present", declared: Sequence[Section] = ()
) -> str:
    """Commented HJSON in the layout yggdrasil's genconf uses."""
    import hjson

    comments = {**COMMENTS, **{s.name: s.comment for s in declared if s.comment}}
    lines = ["{"]
    for key, value in to_data(cfg, sections=sections, declared=declared).items():
        if key == "NodeInfo" and value is None:
            value = {}  # as Go's HJSON encoder writes a nil map
        comment = comments.get(key)
        if comment:
            lines.extend(f"  # {line}" for line in comment.splitlines())
        body = hjson.dumps({key: value}).splitlines()[1:-1]
        lines.extend(body)
        lines.append("")
    if lines[-1] == "":
        lines.pop()
    lines.append("}")
    return "\n".join(lines)
