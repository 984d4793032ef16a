"""The admin shell's SSH server: who may connect, for how long, and the listening service.

At most 32 connections, 16 from one address.  A client has 60 s from the TCP accept to
log in (OpenSSH's LoginGraceTime; conch's own timer starts only after key exchange, so a
client that sends its version string and stops would hold its place for ever), and 6
authentication attempts.  A newcomer who finds every place taken closes a connection that
has not logged in — one still before key exchange first, then the longest idle — so
connections that never log in cannot lock out one that will (``ygg.admin.limits``).
Logged-in sessions are never closed to make room.
"""

from __future__ import annotations

from typing import Any

from twisted.conch.error import IgnoreAuthentication
from twisted.conch.ssh import keys
from twisted.conch.ssh.connection import SSHConnection
from twisted.conch.ssh.factory import SSHFactory
from twisted.conch.ssh.transport import SSHServerTransport
from twisted.conch.ssh.userauth import SSHUserAuthServer
from twisted.cred.portal import Portal
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger, LogLevel
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from ygg import address as addr
from ygg.admin.limits import Slots, quiet_log
from ygg.admin.listener import AdminListener, AdminListenError
from ygg.admin.registry import Registry
from ygg.admin.shell.channel import AdminRealm
from ygg.admin.shell.commands import ShellCommands
from ygg.admin.shell.keyfiles import AuthorizedKeysFile, KeyChecker, load_host_key

log = Logger(namespace="ygg.admin")

MAX_CONNECTIONS = 32
MAX_PER_CLIENT = 16
LOGIN_TIMEOUT = 60
MAX_AUTH_TRIES = 6


class PublicKeyUserAuth(SSHUserAuthServer):
    """Userauth with OpenSSH's limits (6 tries, a minute to log in); refusals logged."""

    attemptsBeforeDisconnect = MAX_AUTH_TRIES
    loginTimeout = LOGIN_TIMEOUT
    _log = quiet_log

    def serviceStarted(self) -> None:
        self.clock = self.transport.factory.clock  # the door's reactor, not the global one
        super().serviceStarted()

    def _ebBadAuth(self, reason: Failure) -> None:
        if not reason.check(IgnoreAuthentication) and self.method not in (b"none", b"publickey"):
            self.transport.factory.slots.notices.emit(
                "password",
                LogLevel.info,
                "SSH admin shell: refused {method} login for {user} from {peer}",
                method=self.method.decode("ascii", "replace"),
                user=(self.user or b"").decode("utf-8", "replace"),
                peer=self.transport.transport.getPeer(),
            )
        return super()._ebBadAuth(reason)


class AdminSSHConnection(SSHConnection):
    _log = quiet_log


class AdminSSHTransport(TimeoutMixin, SSHServerTransport):
    """The server transport, holding one of the door's places until it is lost."""

    ourVersionString = b"SSH-2.0-ygg"
    _log = quiet_log
    authenticated = False

    def callLater(self, period: float, func: Any) -> Any:  # TimeoutMixin's clock
        return self.factory.clock.callLater(period, func)

    def connectionMade(self) -> None:
        if not self.factory.slots.admit(self):
            self.transport.abortConnection()
            return
        self.setTimeout(LOGIN_TIMEOUT)  # from the accept, until userauth lets it in
        super().connectionMade()

    def dataReceived(self, data: bytes) -> None:
        self.factory.slots.touch(self)
        super().dataReceived(data)

    def eviction_rank(self) -> int | None:
        if self.authenticated:
            return None
        return 0 if self.service is None else 1  # before key exchange, then in userauth

    def setService(self, service: Any) -> None:
        super().setService(service)
        if service.name == b"ssh-connection":  # only userauth starts it, after a login
            self.authenticated = True
            self.setTimeout(None)

    def timeoutConnection(self) -> None:
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure) -> None:
        self.setTimeout(None)
        self.factory.slots.release(self)
        super().connectionLost(reason)


class AdminSSHFactory(SSHFactory):
    protocol = AdminSSHTransport
    services = {b"ssh-userauth": PublicKeyUserAuth, b"ssh-connection": AdminSSHConnection}
    # SSHFactory logs at every connection that group-exchange key exchanges are off
    # (there is no moduli file); they are meant to be.
    _log = quiet_log
    noisy = False

    def __init__(self, portal: Portal, host_key: keys.Key, slots: Slots, clock: Any) -> None:
        self.portal = portal
        self.publicKeys = {host_key.sshType(): host_key.public()}
        self.privateKeys = {host_key.sshType(): host_key}
        self.primes = None
        self.slots = slots
        self.clock = clock


class AdminShellService(AdminListener):
    """Listens on ``AdminShell.Listen`` (a Twisted server endpoint string); off when empty."""

    what = "SSH admin shell"

    def __init__(self, node: Any, registry: Registry, config: Any, reactor: Any) -> None:
        super().__init__(reactor)
        self.node = node
        self.registry = registry
        self.config = config

    def make_endpoint(self) -> IStreamServerEndpoint | None:
        return self.parse_endpoint(self.config.listen)

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
        self.slots = Slots(self.what, MAX_CONNECTIONS, MAX_PER_CLIENT, self.reactor)
        return AdminSSHFactory(portal, host_key, self.slots, self.reactor)

    def _banner(self) -> str:
        address = getattr(self.node, "address", None)
        where = f" on {addr.format_address(address)}" if address else ""
        return f"ygg admin shell{where}. Type help for the commands, exit to leave.\n"
