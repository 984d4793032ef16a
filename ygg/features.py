"""Finding the node's features, and what the node and the command line need of them.

A feature is an ``IFeature`` object named by an entry point in the group ``ygg.features``
(``[project.entry-points."ygg.features"] name = "package.module:object"``).  Entry points
are how Python packages announce plugins: they work the same for pip installs into a venv,
``pip install --target`` plus PYTHONPATH, and editable installs, need no cache file
beside the code, and leave ygg's own package untouched (docs/design.md).  They are read
by :mod:`ygg.entrypoints` (importlib.metadata would stay in memory for one lookup).

Loading is isolated: a feature that fails to import, or is not an ``IFeature``, is reported
by name with the reason and left out; the others load.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.logger import Logger, LogLevel
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from ygg import config as node_config
from ygg import entrypoints
from ygg.config import NodeConfig, Section, override
from ygg.interfaces import IFeature

log = Logger(namespace="ygg")

GROUP = "ygg.features"


@dataclass(frozen=True)
class Failure:
    """A feature that could not be loaded, built or started: its name and the reason."""

    name: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    features: tuple[Any, ...]  # IFeature providers, sorted by name
    failures: tuple[Failure, ...]
    notes: tuple[str, ...]  # one line each about installs that are not as they should be


def describe(error: BaseException) -> str:
    """An exception as one line: its type and its text."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check(feature: Any) -> None:
    verifyObject(IFeature, feature)
    if not isinstance(feature.name, str) or not isinstance(feature.section, str):
        raise TypeError("name and section must be strings")


def _load(entry: entrypoints.EntryPoint) -> Any:
    feature = entry.load()
    try:
        _check(feature)
    except Invalid as e:
        raise TypeError(f"{entry.value} does not provide IFeature ({e})") from None
    return feature


def _install_notes(entries: Iterable[entrypoints.EntryPoint]) -> list[str]:
    """Lines about plugin installs that would hurt ygg, said once at start."""
    notes = []
    for path in sys.path:
        legacy = os.path.join(path or ".", "ygg", "plugins")
        if os.path.isdir(legacy) and any(n.endswith(".py") for n in os.listdir(legacy)):
            notes.append(
                f"ignoring {legacy}: features are found by their entry point in the group "
                f"{GROUP!r} now, not in ygg/plugins (docs/plugins.md)"
            )
    for entry in entries:
        dist = entry.dist
        if dist.name == "ygg":
            continue
        owned = [f for f in dist.files() if f.startswith("ygg/")]
        if owned:
            notes.append(
                f"the package {dist.name} installs {owned[0]} into ygg's own "
                "package; uninstalling it may break ygg (ship your own package instead)"
            )
    return notes


#: No features at all (for tests and embedders that want a bare node).
NONE = Discovery((), (), ())

_found: Discovery | None = None


def discover(refresh: bool = False) -> Discovery:
    """Every installed feature, built-in and third-party, loaded once and sorted by name."""
    global _found
    if _found is not None and not refresh:
        return _found
    entries = sorted(entrypoints.entry_points(GROUP), key=lambda e: e.name)
    features: dict[str, Any] = {}
    failures: list[Failure] = []
    for entry in entries:
        try:
            feature = _load(entry)
        except Exception as e:
            failures.append(Failure(entry.name, describe(e)))
            log.error(
                "Feature {name} failed to load: {reason}", name=entry.name, reason=describe(e)
            )
            log.failure("Feature {name} failed to load", name=entry.name, level=LogLevel.debug)
            continue
        if feature.name in features:
            # Two distributions with one feature name (an old copy left behind, usually).
            log.warn("Feature {name} is installed twice; using the first", name=feature.name)
            continue
        features[feature.name] = feature
    _found = Discovery(
        features=tuple(sorted(features.values(), key=lambda f: f.name)),
        failures=tuple(failures),
        notes=tuple(_install_notes(entries)),
    )
    return _found


# --------------------------------------------------------------------------- config


def sections(features: Iterable[Any]) -> list[Section]:
    """The features' config sections, for genconf and normaliseconf."""
    return [Section(f.section, f.schema, getattr(f, "description", "") or "") for f in features]


def feature_config(
    feature: Any,
    config: NodeConfig,
    overrides: Mapping[str, Any] | None = None,
    unknown: list[str] | None = None,
) -> Any:
    """A feature's section, with its command-line options (option name -> value) applied;
    keys its schema does not know are added to ``unknown``."""
    section = config.section(feature.section, feature.schema, unknown)
    for option in feature.options:
        if overrides and option.name in overrides:
            section = override(section, {option.key: overrides[option.name]}, f"--{option.name}")
    return section


def is_enabled(section: Any) -> bool:
    return bool(getattr(section, "enable", False))


def options_of(features: Iterable[Any]) -> list[Any]:
    return [option for feature in features for option in feature.options]


def commands_of(features: Iterable[Any]) -> list[tuple[Any, Any]]:
    """(feature, Command) for every subcommand the features bring."""
    return [(f, c) for f in features for c in getattr(f, "commands", ()) or ()]


def format_config(config: NodeConfig, *, json: bool = False, sections_: str = "present") -> str:
    """The config as normaliseconf prints it, the installed features' sections included."""
    declared = sections(discover().features)
    if json:
        return node_config.to_json(config, sections=sections_, declared=declared)
    return node_config.to_hjson(config, sections=sections_, declared=declared)
