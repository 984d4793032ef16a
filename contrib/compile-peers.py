#!/usr/bin/env python3
"""Compile autopeering's built-in peer list from yggdrasil-network/public-peers.

Reads the country files (``<region>/<country>.md``; the ``other/`` folder of i2p, tor and
lokinet peers is left out), takes every backticked ``tcp://`` or ``tls://`` URI, and
writes them one a line, grouped by country file name in alphabetical order (whatever the
region folder), in the order the file lists them, each URI once.  The output starts with
a short ``#`` comment naming the source; ``ygg.popura.autopeer`` skips comments and blank
lines.

    contrib/compile-peers.py ~/src/public-peers > ygg/popura/autopeer/peers.txt
    contrib/compile-peers.py --rev bcf561e /path/to/public-peers.git -o peers.txt

SOURCE is a checkout (its files are read as they are on disk) or a git repository (bare
or not): with ``--rev``, or when it has no work tree, the files are read from that
revision (HEAD by default).  ``--probe`` keeps only the peers that accept a TCP
connection within ``--timeout`` seconds — that dials every host in the list, so it is off
unless asked for.  Only the Python standard library and, for revisions, ``git`` are used.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import re
import socket
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

URI = re.compile(r"`\s*((?:tcp|tls)://[^`\s]+)\s*`")
EXCLUDED_FOLDERS = frozenset({"other"})


# -- reading the source -------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"compile-peers: git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _is_git(path: Path) -> bool:
    done = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--git-dir"], capture_output=True, check=False
    )
    return done.returncode == 0


def _country_path(path: PurePosixPath) -> bool:
    return len(path.parts) == 2 and path.suffix == ".md" and path.parts[0] not in EXCLUDED_FOLDERS


def read_country_files(source: Path, rev: str | None) -> tuple[dict[str, str], str]:
    """The country files (relative path -> text) and a description of where they came from."""
    has_tree = any(source.glob("*/*.md"))
    if rev is None and has_tree:
        files = {
            path.relative_to(source).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(source.glob("*/*.md"))
            if _country_path(PurePosixPath(path.relative_to(source).as_posix()))
        }
        where = "a checkout"
        if _is_git(source):
            where = "commit " + _git(source, "log", "-1", "--format=%h (%cs)").strip()
            if _git(source, "status", "--porcelain", "--", "*/*.md").strip():
                where += " with local changes"
        return files, where
    if not _is_git(source):
        raise SystemExit(f"compile-peers: {source} is neither a checkout nor a git repository")
    rev = rev or "HEAD"
    names = _git(source, "ls-tree", "-r", "--name-only", rev).splitlines()
    files = {
        name: _git(source, "show", f"{rev}:{name}")
        for name in sorted(names)
        if _country_path(PurePosixPath(name))
    }
    return files, "commit " + _git(source, "log", "-1", "--format=%h (%cs)", rev).strip()


# -- compiling ----------------------------------------------------------------------------


def host_port(uri: str) -> tuple[str, int] | None:
    """The host and port a URI names, or None when it names none."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None:
        return None
    return parts.hostname, port


def compile_peers(files: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(country, URIs) in country order; each URI appears once, under its first country."""
    by_country: dict[str, list[str]] = {}
    for name in sorted(files, key=lambda n: (PurePosixPath(n).stem, n)):
        country = PurePosixPath(name).stem
        by_country.setdefault(country, []).extend(URI.findall(files[name]))
    seen: set[str] = set()
    groups = []
    for country in sorted(by_country):
        uris = []
        for uri in by_country[country]:
            if uri in seen:
                continue
            seen.add(uri)
            if host_port(uri) is None:
                print(f"compile-peers: skipping {uri} ({country}): no host:port", file=sys.stderr)
                continue
            uris.append(uri)
        if uris:
            groups.append((country, uris))
    return groups


def probe(uris: list[str], timeout: float, jobs: int) -> set[str]:
    """The URIs whose host:port accepts a TCP connection within ``timeout`` seconds."""

    def connect(uri: str) -> tuple[str, float | None]:
        host, port = host_port(uri)  # type: ignore[misc]
        started = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return uri, time.monotonic() - started
        except OSError:
            return uri, None

    alive = set()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for uri, latency in pool.map(connect, uris):
            if latency is None:
                print(f"compile-peers: {uri}: no answer", file=sys.stderr)
            else:
                print(f"compile-peers: {uri}: {latency * 1000:.0f} ms", file=sys.stderr)
                alive.add(uri)
    return alive


def render(groups: list[tuple[str, list[str]]], where: str, probed: bool) -> str:
    count = sum(len(uris) for _, uris in groups)
    lines = [
        "# Autopeering's built-in peer list: the tcp:// and tls:// peers of",
        f"# github.com/yggdrasil-network/public-peers at {where},",
        "# grouped by country. Made by contrib/compile-peers.py"
        + (" (only peers that answered a TCP connect)." if probed else "."),
        f"# {count} peers; one URI a line, '#' starts a comment.",
    ]
    for country, uris in groups:
        lines.append("")
        lines.append(f"# {country}")
        lines.extend(uris)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="public-peers checkout or git repository")
    parser.add_argument("--rev", help="read the files at this git revision")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.add_argument(
        "--probe", action="store_true", help="keep only peers that accept a TCP connection"
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="probe timeout (s)")
    parser.add_argument("--jobs", type=int, default=32, help="probes at a time")
    args = parser.parse_args(argv)

    files, where = read_country_files(args.source, args.rev)
    if not files:
        raise SystemExit(f"compile-peers: no country files (*/*.md) in {args.source}")
    groups = compile_peers(files)
    if args.probe:
        alive = probe([uri for _, uris in groups for uri in uris], args.timeout, args.jobs)
        groups = [(c, [u for u in uris if u in alive]) for c, uris in groups]
        groups = [(c, uris) for c, uris in groups if uris]
    text = render(groups, where, args.probe)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    count = sum(len(uris) for _, uris in groups)
    print(f"compile-peers: {count} peers from {len(files)} country files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
