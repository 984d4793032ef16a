#!/usr/bin/env python3
"""Compile autopeering's built-in peer lists from yggdrasil-network/public-peers.

Reads the country files (``<region>/<country>.md``; the ``other/`` folder of i2p, tor and
lokinet peers is left out), takes every backticked ``tcp://`` or ``tls://`` URI, and
writes them one a line, grouped by country file name in alphabetical order (whatever the
region folder), in the order the file lists them, each URI once.  The output starts with
a short ``#`` comment naming the source; ``ygg.popura.autopeer`` skips comments and blank
lines.

Each URI is followed by the protocol version it serves, ``v0.4`` or ``v0.5``.  The
repository said so only for a while: from October 2023 some peers were marked
``(v0.5 testing only)`` or ``(v0.5)``, and from f691c32 (2023-11-18) the others
``(v0.4 only)``, until 0ff60b8 (2024-01-28) removed the peers still on 0.4; since then
no peer is marked and every one serves 0.5.  A mark after a URI tags that URI; a mark on
a node's bullet (``* Moscow, … *(v0.5 testing only)*``) or heading tags the URIs under
it.  An unmarked URI gets what the list implied at its commit date: v0.4 before
2023-11-18, v0.5 from then on (``--default-version`` overrides; a checkout that is not
a git repository needs it).  A ``?password=`` (v0.5's link password) tags its URI v0.5.

    contrib/compile-peers.py --rev bcf561e public-peers.git -o ygg/popura/autopeer/peers.txt
    contrib/compile-peers.py --rev f4dda70 public-peers.git \
        -o ygg/popura/autopeer/peers-v05.txt

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
#: Anything in backticks: a mark is looked for in the text around them.
_CODE = re.compile(r"`[^`]*`")
#: "(v0.4 only)", "(v0.5 testing only)", "(v0.5)", "*(v0.5 testing only)*".
_MARK = re.compile(r"\(\s*v?(0\.[45])\b[^)]*\)")
#: A line that starts a node's entry or a section: a top-level bullet or a heading.
_BLOCK = re.compile(r"^(?:[*+-]\s|#)")
VERSIONS = ("0.4", "0.5")
#: From this commit date on, an unmarked peer serves v0.5: f691c32 marked the v0.4 ones.
V05_UNMARKED_FROM = "2023-11-18"


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


def read_country_files(source: Path, rev: str | None) -> tuple[dict[str, str], str, str | None]:
    """The country files (relative path -> text), a description of where they came from
    and the commit's date (``YYYY-MM-DD``; None for a checkout that is not a git one)."""
    has_tree = any(source.glob("*/*.md"))
    if rev is None and has_tree:
        files = {
            path.relative_to(source).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(source.glob("*/*.md"))
            if _country_path(PurePosixPath(path.relative_to(source).as_posix()))
        }
        where, date = "a checkout", None
        if _is_git(source):
            where = "commit " + _git(source, "log", "-1", "--format=%h (%cs)").strip()
            date = _git(source, "log", "-1", "--format=%cs").strip()
            if _git(source, "status", "--porcelain", "--", "*/*.md").strip():
                where += " with local changes"
        return files, where, date
    if not _is_git(source):
        raise SystemExit(f"compile-peers: {source} is neither a checkout nor a git repository")
    rev = rev or "HEAD"
    names = _git(source, "ls-tree", "-r", "--name-only", rev).splitlines()
    files = {
        name: _git(source, "show", f"{rev}:{name}")
        for name in sorted(names)
        if _country_path(PurePosixPath(name))
    }
    where = "commit " + _git(source, "log", "-1", "--format=%h (%cs)", rev).strip()
    return files, where, _git(source, "log", "-1", "--format=%cs", rev).strip()


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


def unmarked_version(date: str) -> str:
    """The version an unmarked peer of the list at this commit date serves."""
    return "0.5" if date >= V05_UNMARKED_FROM else "0.4"


def _mark(text: str) -> str | None:
    """The version a line marks outside its backticks, if any."""
    found = _MARK.search(_CODE.sub(" ", text))
    return found.group(1) if found else None


def tagged_uris(text: str, default: str) -> list[tuple[str, str]]:
    """(URI, version) of one country file, in order: a mark after the URI on its line,
    else one on the bullet or heading it is under, else ``default``."""
    found = []
    block: str | None = None
    for line in text.splitlines():
        if _BLOCK.match(line):
            block = None  # a new node or section
        uris = URI.findall(line)
        mark = _mark(line)
        if not uris:
            block = mark or block
            continue
        for uri in uris:
            version = mark or block or default
            if "password=" in uri.partition("?")[2]:
                version = "0.5"  # link passwords came with 0.5
            found.append((uri, version))
    return found


def compile_peers(files: dict[str, str], default: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(country, [(URI, version)]) in country order; each URI appears once, under its first
    country.  ``default`` is the version of peers the list does not mark."""
    by_country: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(files, key=lambda n: (PurePosixPath(n).stem, n)):
        country = PurePosixPath(name).stem
        by_country.setdefault(country, []).extend(tagged_uris(files[name], default))
    seen: set[str] = set()
    groups = []
    for country in sorted(by_country):
        entries = []
        for uri, version in by_country[country]:
            if uri in seen:
                continue
            seen.add(uri)
            if host_port(uri) is None:
                print(f"compile-peers: skipping {uri} ({country}): no host:port", file=sys.stderr)
                continue
            entries.append((uri, version))
        if entries:
            groups.append((country, entries))
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


def render(
    groups: list[tuple[str, list[tuple[str, str]]]], where: str, probed: bool, default: str
) -> str:
    count = sum(len(entries) for _, entries in groups)
    lines = [
        "# Autopeering's built-in peer list: the tcp:// and tls:// peers of",
        f"# github.com/yggdrasil-network/public-peers at {where},",
        "# grouped by country. Made by contrib/compile-peers.py"
        + (" (only peers that answered a TCP connect)." if probed else "."),
        f"# {count} peers; one URI a line, then the protocol version it serves: as the list",
        f"# marks it, else v{default} as the list implied at that date. '#' starts a comment.",
    ]
    for country, entries in groups:
        lines.append("")
        lines.append(f"# {country}")
        lines.extend(f"{uri} v{version}" for uri, version in entries)
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
    parser.add_argument(
        "--default-version",
        choices=VERSIONS,
        help="version of the peers the list does not mark (default: by the commit's date, "
        f"v0.5 from {V05_UNMARKED_FROM})",
    )
    args = parser.parse_args(argv)

    files, where, date = read_country_files(args.source, args.rev)
    if not files:
        raise SystemExit(f"compile-peers: no country files (*/*.md) in {args.source}")
    default = args.default_version
    if default is None:
        if date is None:
            raise SystemExit(
                f"compile-peers: {args.source} is not a git repository: give --default-version"
            )
        default = unmarked_version(date)
    groups = compile_peers(files, default)
    if args.probe:
        alive = probe([uri for _, es in groups for uri, _ in es], args.timeout, args.jobs)
        groups = [(c, [(u, v) for u, v in es if u in alive]) for c, es in groups]
        groups = [(c, es) for c, es in groups if es]
    text = render(groups, where, args.probe, default)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    count = sum(len(entries) for _, entries in groups)
    tally = ", ".join(
        f"{sum(v == version for _, es in groups for _, v in es)} v{version}" for version in VERSIONS
    )
    print(
        f"compile-peers: {count} peers ({tally}) from {len(files)} country files", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
