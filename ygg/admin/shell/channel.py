"""The shell's side of SSH after login: the realm, its avatar, and the session channel
that runs a shell (on a terminal or not) or one command.

The channel is conch's ``SSHChannel`` with the four requests a shell needs (``pty-req``,
``window-change``, ``shell``, ``exec``) handled here, rather than conch's ``SSHSession``:
that one logs every request and exit status at info level through a module logger, and a
door's per-connection lines belong at debug (``ygg.admin.limits.quiet``).
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.conch.avatar import ConchUser
from twisted.conch.insults import insults
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh import common, connection, session
from twisted.conch.ssh.channel import SSHChannel
from twisted.cred.portal import IRealm
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg.admin.limits import quiet_log
from ygg.admin.shell.commands import Result, ShellCommands
from ygg.admin.shell.terminal import LineShell, TerminalShell, write


class SessionChannel(SSHChannel):
    """One ``session`` channel: a shell or one command, then its exit status."""

    name = b"session"
    _log = quiet_log

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window: tuple[int, ...] | None = None
        self.client: Protocol | None = None  # the shell reading what the client sends
        self.terminal: insults.ServerProtocol | None = None
        self.ended = False

    @property
    def commands(self) -> ShellCommands:
        return self.avatar.commands  # type: ignore[no-any-return]

    # -- requests ------------------------------------------------------------------------

    def request_pty_req(self, data: bytes) -> int:
        _term, self.window, _modes = session.parseRequest_pty_req(data)
        return 1

    def request_window_change(self, data: bytes) -> int:
        self.window = session.parseRequest_window_change(data)
        if self.terminal is not None and self.terminal.terminalProtocol is not None:
            rows, cols = self.window[:2]
            self.terminal.terminalProtocol.terminalSize(cols, rows)
        return 1

    def request_shell(self, data: bytes) -> int:
        if self.client is not None:
            return 0
        if self.window is not None:
            server = insults.ServerProtocol(
                TerminalShell, self.commands, self.finish, self.avatar.banner
            )
            server.makeConnection(self)
            rows, cols = self.window[:2]
            server.terminalProtocol.terminalSize(cols, rows)
            self.terminal = self.client = server
        else:
            lines = LineShell(self.commands, self.finish)
            lines.makeConnection(self)
            self.client = lines
        return 1

    def request_exec(self, data: bytes) -> int:
        if self.client is not None:
            return 0
        self.client = Protocol()  # what the client sends to a command is not read
        command = common.getNS(data)[0].decode("utf-8", "replace")
        newline = "\r\n" if self.window is not None else "\n"

        def show(result: Result) -> None:
            if self.ended:
                return
            if not result.exit:
                write(self, result, newline)
            self.finish(0 if result.exit else result.status)

        self.commands.run(command).addCallback(show)
        return 1

    # -- data --------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.client is not None:
            self.client.dataReceived(data)

    def eofReceived(self) -> None:
        if isinstance(self.client, LineShell):
            self.client.eof()

    def write_error(self, data: bytes) -> None:
        self.writeExtended(connection.EXTENDED_DATA_STDERR, data)

    def finish(self, status: int) -> None:
        """The shell or command is done: send its exit status and close the channel."""
        if self.ended:
            return
        self.ended = True
        self.conn.sendRequest(self, b"exit-status", struct.pack(">L", status))
        self.loseConnection()

    def closed(self) -> None:
        self.ended = True
        if self.client is not None:
            client, self.client = self.client, None
            client.connectionLost(Failure(ConnectionDone("channel closed")))


class AdminAvatar(ConchUser):
    def __init__(self, commands: ShellCommands, name: bytes, banner: str) -> None:
        super().__init__()
        self.commands = commands
        self.name = name
        self.banner = banner
        self.channelLookup[b"session"] = SessionChannel


@implementer(IRealm)
class AdminRealm:
    def __init__(self, commands: ShellCommands, banner: str = "") -> None:
        self.commands = commands
        self.banner = banner

    def requestAvatar(self, avatarId: bytes, mind: Any, *interfaces: Any) -> Any:
        if IConchUser not in interfaces:
            raise NotImplementedError("only SSH users log in here")
        return IConchUser, AdminAvatar(self.commands, avatarId, self.banner), lambda: None
