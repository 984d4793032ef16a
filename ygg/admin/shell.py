"""The admin registry as an SSH shell (``AdminShell``), on twisted.conch.

Logging in
    Public keys only: the keys in ``AuthorizedKeysFile`` (OpenSSH's format, one key per
    line; ``#`` comments; lines with options such as ``from=`` are ignored, because they
    are not enforced), read again at every login.  Any user name is accepted.  No
    passwords, no keyboard-interactive: the server offers only ``publickey``.  The host
    key is an ed25519 key kept at ``HostKeyFile`` (made on first start, mode 0600, its
    directory created; ``HostKeyFile.pub`` holds the public half for known_hosts).

Using it
    ``ssh -p PORT node`` gives a prompt where every admin method is a command
    (``getPeers``, ``getNodeInfo key=…``, ``addPeer uri=tls://…``), with tab completion of
    command and argument names, history, ``help`` and ``help CMD``, ``exit``.  Replies are
    printed as yggdrasilctl prints them (``ygg.admin.tables``), as JSON where it has no
    table, or as JSON always with ``-json`` on the line.  ``ssh node getPeers`` runs one
    command and exits with 0, or 1 on an error (written to stderr); without a terminal
    (``echo getSelf | ssh -T node``) the shell reads commands line by line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from twisted.conch.avatar import ConchUser
from twisted.conch.checkers import IAuthorizedKeysDB, SSHPublicKeyChecker
from twisted.conch.error import IgnoreAuthentication
from twisted.conch.insults import insults
from twisted.conch.interfaces import IConchUser, ISession
from twisted.conch.recvline import HistoricRecvLine
from twisted.conch.ssh import keys, session
from twisted.conch.ssh.connection import SSHConnection
from twisted.conch.ssh.factory import SSHFactory
from twisted.conch.ssh.transport import SSHServerTransport
from twisted.conch.ssh.userauth import SSHUserAuthServer
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python import components
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg import address as addr
from ygg import gojson
from ygg.admin import tables
from ygg.admin.json_socket import AdminListenError
from ygg.admin.listener import Connections, EndpointListener
from ygg.admin.registry import AdminError, Method, Registry

log = Logger(namespace="ygg.admin")

MAX_CONNECTIONS = 32
LOGIN_TIMEOUT = 60
MAX_AUTH_TRIES = 6
JSON_FLAGS = ("-json", "--json")


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Result:
    text: str
    status: int = 0
    error: bool = False
    exit: bool = False


BUILTINS = {
    "help": ("[command]", "Show the commands, or what one command takes"),
    "exit": ("", "Leave the shell"),
}


class ShellCommands:
    """What the shell does with a line: the registry's methods, plus help and exit."""

    def __init__(self, node: Any, registry: Registry) -> None:
        self.node = node
        self.registry = registry

    def run(self, line: str) -> Deferred[Result]:
        return maybeDeferred(self._run, line).addErrback(self._crashed)

    def _crashed(self, failure: Failure) -> Result:
        log.failure("Admin shell command failed", failure)
        return Result("Error: Check your syntax and input types\n", 1, error=True)

    def _run(self, line: str) -> Result | Deferred[Result]:
        try:
            words = shlex.split(line)
        except ValueError as e:
            return Result(f"Error: {e}\n", 1, error=True)
        as_json = any(w.lower() in JSON_FLAGS for w in words)
        words = [w for w in words if w.lower() not in JSON_FLAGS]
        if not words:
            return Result("")
        name, rest = words[0], words[1:]
        if name.lower() in ("exit", "quit", "logout"):
            return Result("", exit=True)
        if name.lower() in ("help", "?"):
            return self.help(rest[0] if rest else None)
        method = self.registry.lookup(name)
        if method is None:
            return Result(f"Error: unknown command '{name}', try 'help'\n", 1, error=True)
        try:
            arguments = self.arguments(method, rest)
        except AdminError as e:
            return Result(f"Error: {e}\n", 1, error=True)
        d = self.registry.call(self.node, method.name, arguments)
        return d.addCallbacks(self._format, self._failed, callbackArgs=(method, as_json))

    def arguments(self, method: Method, words: list[str]) -> dict[str, Any]:
        """``key=value`` words as the method's typed arguments."""
        kinds = {arg.name.lower(): arg for arg in method.args}
        arguments: dict[str, Any] = {}
        for word in words:
            key, sep, value = word.partition("=")
            if not sep:
                raise AdminError(f"expected key=value, got {word!r}")
            arg = kinds.get(key.lower())
            if arg is None:
                takes = ", ".join(method.fields) or "no arguments"
                raise AdminError(f"{method.name} has no argument {key!r} (it takes {takes})")
            arguments[arg.name] = _convert(arg.kind, arg.name, value)
        return arguments

    def _format(self, result: Any, method: Method, as_json: bool) -> Result:
        data = json.loads(gojson.dumps(result))  # what the other doors' clients see
        if as_json:
            return Result(gojson.dumps(data, indent=2) + "\n")
        try:
            text = tables.render(method.key, data)
        except (TypeError, ValueError, AttributeError):
            text = None
        if text is None and method.table and isinstance(data, dict):
            rows = data.get(method.table)
            if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
                text = tables.generic(rows)
        if text is None:
            text = gojson.dumps(data, indent=2) + "\n"
        return Result(text)

    def _failed(self, failure: Failure) -> Result:
        failure.trap(AdminError)
        return Result(f"Error: {failure.value}\n", 1, error=True)

    def help(self, name: str | None = None) -> Result:
        if name is None:
            rows = [
                [m.name, ", ".join(f"{f}=..." for f in m.fields), m.description]
                for m in self.registry
            ]
            rows += [[n, args, text] for n, (args, text) in BUILTINS.items()]
            footer = "\nAdd -json to a command for its reply as JSON.\n"
            return Result(tables.table(rows, ["Command", "Arguments", "Description"]) + footer)
        if name.lower() in BUILTINS:
            args, text = BUILTINS[name.lower()]
            return Result(f"{name.lower()} {args}\n  {text}\n")
        method = self.registry.lookup(name)
        if method is None:
            return Result(f"Error: unknown command '{name}', try 'help'\n", 1, error=True)
        lines = [" ".join([method.name, *(f"{f}=..." for f in method.fields)]).rstrip()]
        lines.append(f"  {method.description}")
        for arg in method.args:
            lines.append(f"  {arg.name}: {arg.help or arg.kind}")
        if method.help:
            lines += ["", *(f"  {line}" for line in method.help.splitlines())]
        return Result("\n".join(lines) + "\n")

    def names(self) -> list[str]:
        return [m.name for m in self.registry] + list(BUILTINS)

    def complete(self, before: str) -> list[str]:
        """Candidates for the word that ends ``before`` (the text left of the cursor)."""
        words = before.split(" ")
        word = words[-1]
        done = [w for w in words[:-1] if w]
        if not done:
            return _matching(self.names(), word)
        if done[0].lower() in ("help", "?") and len(done) == 1:
            return _matching(self.names(), word)
        method = self.registry.lookup(done[0])
        if method is None or "=" in word:
            return []
        given = {w.partition("=")[0].lower() for w in done[1:]}
        offered = [f"{f}=" for f in method.fields if f.lower() not in given]
        return _matching(offered + list(JSON_FLAGS[:1]), word)


def _matching(candidates: list[str], word: str) -> list[str]:
    return sorted(c for c in candidates if c.lower().startswith(word.lower()))


def _convert(kind: str, name: str, value: str) -> Any:
    if kind == "bool":
        if value.lower() in ("true", "1", "yes", "on"):
            return True
        if value.lower() in ("false", "0", "no", "off"):
            return False
        raise AdminError(f"{name}: expected true or false, got {value!r}")
    if kind == "number":
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                raise AdminError(f"{name}: expected a number, got {value!r}") from None
    return value


def common_prefix(candidates: list[str]) -> str:
    """The longest prefix all candidates share, ignoring case (spelled as the first)."""
    first = candidates[0]
    length = len(first)
    for other in candidates[1:]:
        length = min(length, len(other))
        for i in range(length):
            if first[i].lower() != other[i].lower():
                length = i
                break
    return first[:length]


# --------------------------------------------------------------------------- terminals


class TerminalShell(HistoricRecvLine):
    """The interactive shell on a terminal: line editing, history, completion."""

    ps = (b"ygg> ", b"... ")

    def __init__(self, commands: ShellCommands, finish: Callable[[int], None], banner: str):
        self.commands = commands
        self.finish = finish
        self.banner = banner
        self.busy = False
        self.gone = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self.keyHandlers.update(
            {
                b"\x01": self.handle_HOME,  # ^A
                b"\x03": self.handle_INTERRUPT,  # ^C
                b"\x04": self.handle_EOF,  # ^D
                b"\x05": self.handle_END,  # ^E
                b"\x08": self.handle_BACKSPACE,  # ^H
                b"\x0c": self.handle_CLEAR,  # ^L
                b"\x15": self.handle_KILL,  # ^U
            }
        )

    def initializeScreen(self) -> None:
        # Unlike RecvLine, leave the screen as it is: write a banner and the prompt.
        self.terminal.write(_crlf(self.banner))
        self.terminal.write(self.ps[self.pn])
        self.setInsertMode()

    def terminalSize(self, width: int, height: int) -> None:
        self.width, self.height = width, height

    def connectionLost(self, reason: Any = None) -> None:
        self.gone = True

    def keystrokeReceived(self, keyID: Any, modifier: Any) -> None:
        if not self.busy:
            super().keystrokeReceived(keyID, modifier)

    def lineReceived(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").strip()
        if not text:
            self.terminal.write(self.ps[self.pn])
            return
        self.busy = True
        self.commands.run(text).addCallback(self._show)

    def _show(self, result: Result) -> None:
        self.busy = False
        if self.gone:
            return
        if result.exit:
            self.finish(0)
            return
        self.terminal.write(_crlf(result.text))
        self.terminal.write(self.ps[self.pn])

    # -- keys ---------------------------------------------------------------------------

    def handle_TAB(self) -> None:
        buffer = b"".join(self.lineBuffer).decode("ascii", "replace")
        before, after = buffer[: self.lineBufferIndex], buffer[self.lineBufferIndex :]
        word = before.rpartition(" ")[2]
        candidates = self.commands.complete(before)
        if not candidates:
            self.terminal.write(b"\x07")
            return
        if len(candidates) == 1:
            replacement = candidates[0]
            if not replacement.endswith("=") and not after.startswith(" "):
                replacement += " "
        else:
            replacement = common_prefix(candidates)
        if replacement != word:
            self._set_line(before[: len(before) - len(word)] + replacement, after)
            return
        # Nothing to add: list the choices under the line, then draw the line again.
        self.terminal.write(b"\r\n" + "  ".join(candidates).encode() + b"\r\n")
        self.drawInputLine()
        if after:
            self.terminal.cursorBackward(len(after))

    def _set_line(self, before: str, after: str) -> None:
        if self.lineBufferIndex:
            self.terminal.cursorBackward(self.lineBufferIndex)
        self.terminal.eraseToLineEnd()
        data = (before + after).encode()
        self.lineBuffer = [data[i : i + 1] for i in range(len(data))]
        self.lineBufferIndex = len(before.encode())
        self.terminal.write(data)
        if after:
            self.terminal.cursorBackward(len(after.encode()))

    def handle_INTERRUPT(self) -> None:
        self.lineBuffer = []
        self.lineBufferIndex = 0
        self.terminal.write(b"^C\r\n" + self.ps[self.pn])

    def handle_EOF(self) -> None:
        if self.lineBuffer:
            self.handle_DELETE()
            return
        self.terminal.write(b"\r\n")
        self.finish(0)

    def handle_CLEAR(self) -> None:
        self.terminal.eraseDisplay()
        self.terminal.cursorHome()
        self.drawInputLine()

    def handle_KILL(self) -> None:
        self._set_line("", "")


class LineShell(Protocol):
    """The shell without a terminal: commands one per line, output as it is, no prompt.
    Ends at ``exit`` or end of input, with the status of the last command."""

    def __init__(self, commands: ShellCommands, finish: Callable[[int], None]) -> None:
        self.commands = commands
        self.finish = finish
        self.buffer = b""
        self.queue: list[str] = []
        self.busy = False
        self.ended = False
        self.status = 0

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        self.queue += [line.decode("utf-8", "replace").strip() for line in lines]
        if len(self.buffer) > 65536:  # nobody types a line that long
            self.queue.append(self.buffer.decode("utf-8", "replace"))
            self.buffer = b""
        self._next()

    def eof(self) -> None:
        if self.buffer.strip():
            self.queue.append(self.buffer.decode("utf-8", "replace").strip())
        self.buffer = b""
        self.ended = True
        self._next()

    def _next(self) -> None:
        while not self.busy and self.queue:
            line = self.queue.pop(0)
            if not line:
                continue
            self.busy = True
            self.commands.run(line).addCallback(self._show)
        if not self.busy and self.ended:
            self.finish(self.status)

    def _show(self, result: Result) -> None:
        self.busy = False
        if result.exit:
            self.queue = []
            self.ended = True
        else:
            self.status = result.status
            _write(self.transport, result, "\n")
        self._next()

    def connectionLost(self, reason: Any = None) -> None:
        self.queue = []


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def _write(proto: Any, result: Result, newline: str) -> None:
    data = result.text.replace("\n", newline).encode()
    if result.error and hasattr(proto, "errReceived"):
        proto.errReceived(data)  # SSHSessionProcessProtocol: to the client's stderr
    elif result.error and hasattr(proto, "writeErr"):
        proto.writeErr(data)
    else:
        proto.write(data)


# --------------------------------------------------------------------------- SSH session


class AdminAvatar(ConchUser):
    def __init__(self, commands: ShellCommands, name: bytes, banner: str) -> None:
        super().__init__()
        self.commands = commands
        self.name = name
        self.banner = banner
        self.channelLookup[b"session"] = session.SSHSession


@implementer(ISession)
class AdminSession:
    """One session channel: a shell (on a terminal or not) or one command."""

    def __init__(self, avatar: AdminAvatar) -> None:
        self.avatar = avatar
        self.window: tuple[int, ...] | None = None
        self.server: insults.ServerProtocol | None = None
        self.lines: LineShell | None = None
        self.ended = False

    def _finisher(self, proto: Any) -> Callable[[int], None]:
        def finish(status: int) -> None:
            if self.ended:
                return
            self.ended = True
            reason = ProcessDone(0) if status == 0 else ProcessTerminated(exitCode=status)
            proto.processEnded(Failure(reason))

        return finish

    def getPty(self, term: bytes, windowSize: tuple[int, ...], modes: Any) -> None:
        self.window = windowSize

    def openShell(self, proto: Any) -> None:
        finish = self._finisher(proto)
        commands = self.avatar.commands
        if self.window is not None:
            server = insults.ServerProtocol(TerminalShell, commands, finish, self.avatar.banner)
            server.makeConnection(proto)
            proto.makeConnection(session.wrapProtocol(server))
            rows, cols = self.window[:2]
            server.terminalProtocol.terminalSize(cols, rows)
            self.server = server
        else:
            lines = LineShell(commands, finish)
            lines.makeConnection(proto)
            proto.makeConnection(session.wrapProtocol(lines))
            self.lines = lines

    def execCommand(self, proto: Any, command: bytes) -> None:
        finish = self._finisher(proto)
        sink = Protocol()  # what the client sends to a command is not read
        sink.makeConnection(proto)
        proto.makeConnection(session.wrapProtocol(sink))
        newline = "\r\n" if self.window is not None else "\n"

        def show(result: Result) -> None:
            if self.ended:
                return
            if result.exit:
                finish(0)
                return
            _write(proto, result, newline)
            finish(result.status)

        self.avatar.commands.run(command.decode("utf-8", "replace")).addCallback(show)

    def windowChanged(self, windowSize: tuple[int, ...]) -> None:
        self.window = windowSize
        if self.server is not None and self.server.terminalProtocol is not None:
            self.server.terminalProtocol.terminalSize(windowSize[1], windowSize[0])

    def eofReceived(self) -> None:
        if self.lines is not None:
            self.lines.eof()

    def closed(self) -> None:
        self.ended = True


components.registerAdapter(AdminSession, AdminAvatar, ISession)


@implementer(IRealm)
class AdminRealm:
    def __init__(self, commands: ShellCommands, banner: str = "") -> None:
        self.commands = commands
        self.banner = banner

    def requestAvatar(self, avatarId: bytes, mind: Any, *interfaces: Any) -> Any:
        if IConchUser not in interfaces:
            raise NotImplementedError("only SSH users log in here")
        return IConchUser, AdminAvatar(self.commands, avatarId, self.banner), lambda: None


# --------------------------------------------------------------------------- keys


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
    """The keys allowed in, for any user name, read from the file at every login."""

    def __init__(self, path: str) -> None:
        self.path = path

    def getAuthorizedKeys(self, avatarId: bytes) -> list[keys.Key]:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError as e:
            log.warn(
                "SSH admin shell: cannot read {path}: {error}", path=self.path, error=e.strerror
            )
            return []
        return parse_authorized_keys(data, self.path)


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


# --------------------------------------------------------------------------- the server


class PublicKeyUserAuth(SSHUserAuthServer):
    """Userauth with OpenSSH's limits (6 tries, a minute to log in); refusals logged."""

    attemptsBeforeDisconnect = MAX_AUTH_TRIES
    loginTimeout = LOGIN_TIMEOUT

    def _ebBadAuth(self, reason: Failure) -> None:
        if not reason.check(IgnoreAuthentication) and self.method not in (b"none", b"publickey"):
            log.info(
                "SSH admin shell: refused {method} login for {user} from {peer}",
                method=self.method.decode("ascii", "replace"),
                user=(self.user or b"").decode("utf-8", "replace"),
                peer=self.transport.transport.getPeer(),
            )
        return super()._ebBadAuth(reason)


class AdminSSHTransport(SSHServerTransport):
    ourVersionString = b"SSH-2.0-ygg"

    def connectionMade(self) -> None:
        if not self.factory.connections.add(self):
            self.transport.abortConnection()
            return
        super().connectionMade()

    def connectionLost(self, reason: Failure) -> None:
        self.factory.connections.remove(self)
        super().connectionLost(reason)


def _discard(event: dict[str, Any]) -> None:
    pass


class AdminSSHFactory(SSHFactory):
    protocol = AdminSSHTransport
    services = {b"ssh-userauth": PublicKeyUserAuth, b"ssh-connection": SSHConnection}
    # SSHFactory logs at every connection that group-exchange key exchanges are off
    # (there is no moduli file); they are meant to be.
    _log = Logger(observer=_discard)
    noisy = False

    def __init__(self, portal: Portal, host_key: keys.Key, connections: Connections) -> None:
        self.portal = portal
        self.publicKeys = {host_key.sshType(): host_key.public()}
        self.privateKeys = {host_key.sshType(): host_key}
        self.primes = None
        self.connections = connections


class AdminShellService(EndpointListener):
    """Listens on ``AdminShell.Listen`` (a Twisted server endpoint string); off when empty."""

    what = "SSH admin shell"

    def __init__(self, node: Any, registry: Registry, config: Any, reactor: Any) -> None:
        super().__init__(config.listen, reactor)
        self.node = node
        self.registry = registry
        self.config = config

    def build_factory(self) -> Factory:
        try:
            host_key = load_host_key(self.config.host_key_file)
        except (OSError, keys.BadKeyError, ValueError) as e:
            raise AdminListenError(
                f"{self.what}: cannot use host key {self.config.host_key_file}: {e}"
            ) from None
        authorized = AuthorizedKeysFile(self.config.authorized_keys_file)
        if not authorized.getAuthorizedKeys(b""):
            log.warn(
                "SSH admin shell: no usable keys in {path}; nobody can log in",
                path=self.config.authorized_keys_file,
            )
        realm = AdminRealm(ShellCommands(self.node, self.registry), self._banner())
        portal = Portal(realm, [KeyChecker(authorized)])
        self.connections = Connections(MAX_CONNECTIONS)
        return AdminSSHFactory(portal, host_key, self.connections)

    def _banner(self) -> str:
        address = getattr(self.node, "address", None)
        where = f" on {addr.format_address(address)}" if address else ""
        return f"ygg admin shell{where}. Type help for the commands, exit to leave.\n"
