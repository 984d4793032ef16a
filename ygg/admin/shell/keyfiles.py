"""The shell's keys: the host key it makes on first start, the authorized keys file read
at every login, and the checker that logs who logged in."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from twisted.conch.checkers import IAuthorizedKeysDB, SSHPublicKeyChecker
from twisted.conch.ssh import keys
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

log = Logger(namespace="ygg.admin")

_KEY_TYPES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")


def fingerprint(key: keys.Key) -> str:
    """As OpenSSH shows it: ``SHA256:…``."""
    digest = hashlib.sha256(key.blob()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_authorized_keys(data: bytes, source: str = "authorized_keys") -> list[keys.Key]:
    """The keys of an OpenSSH authorized_keys file.  Lines with options are skipped:
    options like ``from=`` or ``command=`` would have to be enforced to be safe."""
    found = []
    for number, raw in enumerate(data.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        words = line.split()
        if not words[0].decode("ascii", "replace").startswith(_KEY_TYPES):
            log.warn(
                "{source}:{number}: key options are not supported; line ignored",
                source=source,
                number=number,
            )
            continue
        try:
            found.append(keys.Key.fromString(b" ".join(words[:2])))
        except Exception as e:  # BadKeyError, binascii.Error, ValueError…
            log.warn(
                "{source}:{number}: not a public key ({error}); line ignored",
                source=source,
                number=number,
                error=str(e) or type(e).__name__,
            )
    return found


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """The keys allowed in, for any user name, read from the file at every login.

    Anyone can make the shell read the file (by offering a key), so its problems are
    logged when they change, not at every read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._data: bytes | None = None
        self._keys: list[keys.Key] = []
        self._error: str | None = None

    def getAuthorizedKeys(self, avatarId: bytes) -> list[keys.Key]:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError as e:
            if e.strerror != self._error:
                self._error = e.strerror
                log.warn(
                    "SSH admin shell: cannot read {path}: {error}",
                    path=self.path,
                    error=e.strerror,
                )
            self._data = None
            return []
        self._error = None
        if data != self._data:
            self._data, self._keys = data, parse_authorized_keys(data, self.path)
        return list(self._keys)


class KeyChecker(SSHPublicKeyChecker):
    """SSHPublicKeyChecker that logs who logged in with which key."""

    def requestAvatarId(self, credentials: Any) -> Deferred[bytes]:
        d = super().requestAvatarId(credentials)

        def accepted(avatar_id: bytes) -> bytes:
            log.info(
                "SSH admin shell: {user} logged in with key {fingerprint}",
                user=credentials.username.decode("utf-8", "replace"),
                fingerprint=fingerprint(keys.Key.fromString(credentials.blob)),
            )
            return avatar_id

        return d.addCallback(accepted)


def load_host_key(path: str) -> keys.Key:
    """The ed25519 host key at ``path``, made (0600, directory created) if missing."""
    try:
        with open(path, "rb") as f:
            return keys.Key.fromString(f.read())
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made meanwhile by another process
        with open(path, "rb") as f:
            return keys.Key.fromString(f.read())
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(pem)
    key = keys.Key(private)
    try:
        with open(path + ".pub", "wb") as f:
            f.write(key.public().toString("openssh") + b" ygg-admin-shell\n")
    except OSError:
        pass
    log.info(
        "SSH admin shell: made host key {path} ({fingerprint})",
        path=path,
        fingerprint=fingerprint(key),
    )
    return key
