"""Entry points read from the installed distributions' metadata, without importlib.metadata.

``importlib.metadata`` imports email, csv, zipfile, pathlib and importlib.abc (with
importlib.resources, tempfile and random): ~1.5 MiB that a running node would keep for
one lookup at start.  This reads the same files the same way for what discovery needs:
every ``*.dist-info`` and ``*.egg-info`` directory on ``sys.path`` (pip installs, ``pip
install --target``, editable and develop installs), the first distribution of a name
winning as in ``importlib.metadata.entry_points``, and its ``entry_points.txt``.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

_SUFFIXES = (".dist-info", ".egg-info")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class Distribution:
    """An installed distribution: its name and its metadata directory."""

    name: str
    path: str

    def files(self) -> list[str]:
        """The files it installed, relative to its ``sys.path`` entry: RECORD, or an
        egg-info's installed-files.txt or SOURCES.txt (empty when none is there)."""
        record = _read(os.path.join(self.path, "RECORD"))
        if record is not None:
            import csv  # only for a third-party feature's install notes

            return [row[0] for row in csv.reader(record.splitlines()) if row]
        listed = _read(os.path.join(self.path, "installed-files.txt"))
        if listed is not None:  # relative to the egg-info directory itself
            base = os.path.dirname(self.path)
            return [
                os.path.relpath(os.path.normpath(os.path.join(self.path, line)), base)
                for line in listed.splitlines()
                if line.strip()
            ]
        sources = _read(os.path.join(self.path, "SOURCES.txt")) or ""
        return [line.strip() for line in sources.splitlines() if line.strip()]


@dataclass(frozen=True)
class EntryPoint:
    """``name = module:attr`` in ``group``, from ``dist``."""

    name: str
    value: str
    group: str
    dist: Distribution

    def load(self) -> Any:
        module_name, _, attrs = self.value.partition(":")
        obj = importlib.import_module(module_name.strip())
        for attr in attrs.split("[", 1)[0].strip().split(".") if attrs else ():
            obj = getattr(obj, attr)
        return obj


def _distribution(path: str) -> Distribution | None:
    text = _read(os.path.join(path, "METADATA")) or _read(os.path.join(path, "PKG-INFO"))
    for line in (text or "").splitlines():
        if not line.strip():
            break  # the headers end at the first blank line
        key, _, value = line.partition(":")
        if key.strip().lower() == "name" and value.strip():
            return Distribution(value.strip(), path)
    return None


def _parse(text: str, group: str, dist: Distribution) -> list[EntryPoint]:
    """The entries of ``group`` in an ``entry_points.txt`` (INI: ``[group]``, then
    ``name = value`` lines; ``#`` and ``;`` start comments)."""
    found, current = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            name, _, value = line.partition("=")
            found.append(EntryPoint(name.strip(), value.strip(), group, dist))
    return found


def distributions() -> list[Distribution]:
    """Every distribution on ``sys.path``, the first of each name only."""
    seen, found = set(), []
    for entry in sys.path:
        directory = entry or "."
        try:
            names = os.listdir(directory)
        except OSError:
            continue  # a zip file, or a directory that is not there
        for name in names:
            if not name.endswith(_SUFFIXES):
                continue
            path = os.path.join(directory, name)
            dist = _distribution(path) if os.path.isdir(path) else None
            if dist is not None and _normalized(dist.name) not in seen:
                seen.add(_normalized(dist.name))
                found.append(dist)
    return found


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` of every distribution on ``sys.path``."""
    found = []
    for dist in distributions():
        text = _read(os.path.join(dist.path, "entry_points.txt"))
        if text:
            found += _parse(text, group, dist)
    return found
