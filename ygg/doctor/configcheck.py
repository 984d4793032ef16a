"""The config checks of ``ygg doctor``: the file loads, the node builds from it (the errors
that would stop ``ygg run``), what it warns about at start, and what ``normaliseconf``
would change in it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ygg import config as node_config
from ygg.config import NodeConfig
from ygg.doctor.check import FAIL, OK, SKIP, WARN, Check
from ygg.errors import ConfigError

#: Where yggdrasil looks when given no config, and so ``ygg doctor``.
DEFAULT_PATH = "/etc/yggdrasil/yggdrasil.conf"


def load(path: str | None, host: Any) -> tuple[NodeConfig | None, list[Check]]:
    """The config at ``path`` (None: the default path, if it exists) and its checks; the
    config is None when there is none or it cannot be used."""
    if path is None:
        if host.stat(DEFAULT_PATH) is None:
            return None, [
                Check(
                    "config",
                    SKIP,
                    f"none at {DEFAULT_PATH} (give --config FILE): checking the host, with "
                    "the defaults of ygg run --autoconf",
                )
            ]
        path = DEFAULT_PATH
    fix = f"correct it in {path}; ygg normaliseconf --useconffile {path} shows how ygg reads it"
    try:
        cfg, warnings = node_config.load(path)
    except ConfigError as e:
        return None, [Check("config", FAIL, f"{path}: {e}", fix)]
    try:
        statuses = _build(cfg)
    except ConfigError as e:
        return None, [Check("config", FAIL, f"{path}: {e}: the node does not start", fix)]
    except Exception as e:  # what else a broken setting makes the node raise
        from ygg.features import describe

        text = f"{path}: the node cannot be built from it: {describe(e)}"
        return None, [Check("config", FAIL, text, fix)]
    checks = [Check("config", OK, f"{path} is valid: the node builds from it")]
    warnings = warnings + _feature_warnings(cfg)
    if warnings:
        checks.append(Check("config", WARN, "; ".join(warnings), fix))
    for name, status in statuses.items():
        if status.startswith("failed"):
            checks.append(
                Check(
                    "feature",
                    WARN,
                    f"{name} would be off: {status}",
                    f"see its section in {path}, or reinstall the package that provides it",
                )
            )
    checks += _key_checks(cfg, path)
    checks.append(normalise_check(path, cfg))
    return cfg, checks


def _build(cfg: NodeConfig) -> dict[str, str]:
    """Build the node as ``ygg run`` does, on a clock that is never advanced (nothing it
    schedules runs, nothing listens); the features' states."""
    from twisted.internet.task import Clock

    from ygg.service import Node

    return Node(cfg, Clock()).feature_status()


def _feature_warnings(cfg: NodeConfig) -> list[str]:
    """What the node warns of at start beyond the file's own keys: sections no feature
    claims, keys a feature's schema does not know."""
    from ygg import features

    found = features.discover().features
    claimed = {f.section.lower() for f in found}
    warnings = [f"unknown config key {s!r} ignored" for s in cfg.extra if s.lower() not in claimed]
    for feature in found:
        features.feature_config(feature, cfg, None, warnings)
    return warnings


def _key_checks(cfg: NodeConfig, path: str) -> list[Check]:
    checks = []
    if "PrivateKey" not in cfg.present:
        checks.append(
            Check(
                "config",
                WARN,
                f"{path} has no PrivateKey: the node gets a new identity (and address) at "
                "every start",
                "add one: ygg genconf prints a config with a fresh PrivateKey",
            )
        )
    elif "PublicKey" in cfg.present and cfg.public_key.lower() != cfg.private_key[64:].lower():
        checks.append(
            Check(
                "config",
                WARN,
                "PublicKey is not the key of PrivateKey (the node ignores it, but peers "
                "copying it into AllowedPublicKeys get the wrong one)",
                f"set PublicKey to {cfg.private_key[64:].lower()}",
            )
        )
    return checks


# --------------------------------------------------------------------------- normaliseconf


@dataclass
class Changes:
    """What normalising does to a file's data: paths of keys added (defaults), dropped
    (unknown to a schema), changed in value, or respelled (their case)."""

    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    respelled: list[str] = field(default_factory=list)


def changes(raw: Any, normalised: Any, path: str = "") -> Changes:
    """Compare a file's data with normaliseconf's, key names matched as ygg matches them
    (whatever their case)."""
    found = Changes()
    _compare(raw, normalised, path, found)
    return found


def _compare(raw: Any, normalised: Any, path: str, found: Changes) -> None:
    if isinstance(raw, Mapping) and isinstance(normalised, Mapping):
        by_lower = {str(k).lower(): k for k in raw}
        for key, value in normalised.items():
            where = f"{path}.{key}" if path else key
            old = by_lower.pop(key.lower(), None)
            if old is None:
                found.added.append(where)
                continue
            if old != key:
                found.respelled.append(f"{old} → {key}")
            _compare(raw[old], value, where, found)
        found.dropped += [f"{path}.{k}" if path else str(k) for k in by_lower.values()]
    elif isinstance(raw, list) and isinstance(normalised, list) and len(raw) == len(normalised):
        for i, (a, b) in enumerate(zip(raw, normalised, strict=True)):
            _compare(a, b, f"{path}[{i}]", found)
    elif raw != normalised or (type(raw) is bool) != (type(normalised) is bool):
        found.changed.append(f"{path} ({_short(raw)} → {_short(normalised)})")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "…"


def normalise_check(path: str, cfg: NodeConfig) -> Check:
    from ygg import features

    normalised = json.loads(features.format_config(cfg, json=True, sections_="present"))
    try:
        raw = _raw(path)
    except (OSError, ValueError) as e:
        return Check("normaliseconf", SKIP, f"cannot compare: {e}")
    found = changes(raw, normalised)
    parts = []
    if found.added:
        parts.append(f"add {len(found.added)} keys with their defaults ({_list(found.added)})")
    if found.changed:
        parts.append(f"change {_list(found.changed)}")
    if found.dropped:
        parts.append(f"drop {_list(found.dropped)} (unknown keys)")
    if found.respelled:
        parts.append(f"respell {_list(found.respelled)}")
    if not parts:
        return Check("normaliseconf", OK, "would change nothing")
    status = WARN if found.changed or found.dropped else OK
    fix = (
        f"ygg normaliseconf --useconffile {path} prints the file as ygg reads it (without "
        "its comments)"
        if status == WARN
        else ""
    )
    return Check("normaliseconf", status, "would " + "; ".join(parts), fix)


def _list(items: list[str], most: int = 6) -> str:
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def _raw(path: str) -> Any:
    """The file as plain data, only to compare it with normaliseconf's output."""
    with open(path, "rb") as f:
        return node_config.read_data(f.read())
