"""What ``ygg doctor`` reads of the host, behind one small object the checks are given.

``Host`` reads the real machine and changes nothing: files under /proc and /sys, a stat or
an open of a device, netlink dumps, and sockets that are bound (or connected, which sends
nothing for UDP) and closed at once to see what the node's would meet.  The checks take
any object with these methods, so their tests hand them a fake host.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
from typing import Any

from ygg.doctor import labels
from ygg.links import interfaces

#: /proc/net tables of listening sockets: TCP in state LISTEN (0A), UDP bound (07).
_PROC_NET = {"tcp": (("tcp", "tcp6"), "0A"), "udp": (("udp", "udp6"), "07")}
#: The flag of a listening unix socket in /proc/net/unix (__SO_ACCEPTCON).
_ACCEPTING = 0x10000


class Host:
    """The real host, read-only."""

    def read(self, path: str) -> str | None:
        """A small text file (sysctl, /proc), or None if it cannot be read."""
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None

    def stat(self, path: str) -> os.stat_result | None:
        try:
            return os.stat(path)
        except OSError:
            return None

    def open_error(self, path: str) -> OSError | None:
        """Why ``path`` cannot be opened for reading and writing, or None if it can (a TUN
        device opened so creates nothing: that takes an ioctl)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            return e
        os.close(fd)
        return None

    def access(self, path: str, mode: int) -> bool:
        return os.access(path, mode)

    def euid(self) -> int:
        return os.geteuid()

    def interfaces(self) -> list[interfaces.Interface]:
        """Every interface with its addresses; OSError if netlink cannot be read."""
        return interfaces.all_interfaces()

    def address_labels(self) -> list[labels.Label]:
        """The kernel's address-label table; OSError if it cannot be read."""
        return labels.read_labels()

    def source_for(self, destination: str) -> str:
        """The source address the kernel picks for ``destination`` (a UDP connect, which
        sends nothing); OSError such as ENETUNREACH when it has no route."""
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.connect((destination, 9))
            return str(sock.getsockname()[0]).split("%")[0]

    def bind_error(
        self, kind: str, host: str, port: int, *, reuse: bool | None = None
    ) -> OSError | None:
        """Why a ``kind`` ("tcp" or "udp") socket cannot bind ``host``:``port``, or None.
        ``host`` may be bracketed and carry a zone (``[fe80::1%eth0]``); "" is every
        address (IPv6 and IPv4, as Twisted's ``::``), and a name is resolved.

        TCP sockets get SO_REUSEADDR as Twisted's listening ports do (a port left in
        TIME_WAIT is free to them); UDP ones only when ``reuse`` says so (multicast's).
        """
        socktype = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
        try:
            family, address = _bind_address(host, port, socktype)
        except OSError as e:
            return e
        with socket.socket(family, socktype) as sock:
            if reuse if reuse is not None else kind == "tcp":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as e:
                return e
        return None

    def port_owners(self, kind: str, port: int) -> list[str]:
        """The processes holding a listening ``kind`` socket on ``port``, as
        ``pid N (name)``; empty when /proc does not say (another user's, without root)."""
        tables, state = _PROC_NET[kind]
        inodes: set[str] = set()
        for table in tables:
            text = self.read(f"/proc/net/{table}") or ""
            for line in text.splitlines()[1:]:
                fields = line.split()
                if len(fields) < 10 or fields[3] != state:
                    continue
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
        return _owners(inodes)

    def unix_socket_answers(self, path: str) -> bool:
        """Whether something accepts connections on the unix socket ``path`` (the test
        the node makes before it replaces a stale socket file)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            try:
                sock.connect(path)
            except OSError:
                return False
        return True

    def unix_owners(self, path: str) -> list[str]:
        inodes = set()
        for line in (self.read("/proc/net/unix") or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & _ACCEPTING:
                inodes.add(fields[6])
        return _owners(inodes)


def _bind_address(host: str, port: int, socktype: int) -> tuple[int, Any]:
    host = host.strip("[]") or "::"
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socktype, 0, socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    return family, address


def _owners(inodes: set[str]) -> list[str]:
    """``pid N (name)`` of each process with one of these socket inodes open."""
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found = []
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    for pid in sorted(pids, key=int):
        if _holds(pid, wanted):
            try:
                with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
                    name = f.read().strip()
            except OSError:
                name = "?"
            found.append(f"pid {pid} ({name})")
    return found


def _holds(pid: str, wanted: set[str]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # gone, or another user's without root
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                return True
        except OSError:  # closed meanwhile (the listing's own descriptor is)
            continue
    return False


def is_char_device(result: os.stat_result | None) -> bool:
    return result is not None and stat.S_ISCHR(result.st_mode)


def errno_name(error: OSError) -> str:
    """``EADDRINUSE``-style name of an OSError's errno ("" when it has none)."""
    return errno.errorcode.get(error.errno or 0, "")


def capabilities(status: str | None) -> int | None:
    """The effective capability set from /proc/self/status's ``CapEff`` line."""
    found = re.search(r"^CapEff:\s*([0-9a-fA-F]+)\s*$", status or "", re.MULTILINE)
    return int(found.group(1), 16) if found else None
