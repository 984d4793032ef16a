"""The SSH admin shell: its commands, completion and keys in memory, then OpenSSH's
``ssh`` logging in to a node in this process (one command, a pipe, a terminal), with a
key that is allowed, one that is not, and a password."""

from __future__ import annotations

import dataclasses
import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.conch.insults import helper
from twisted.conch.ssh import keys
from twisted.internet import defer, protocol, reactor
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.helpers import require_tool
from tests.nodes import remove_tree, short_tempdir
from ygg import config, features
from ygg.admin import tables
from ygg.admin.listener import AdminListenError
from ygg.admin.registry import AdminError, Arg, Method, Registry
from ygg.admin.shell import AdminShellService
from ygg.admin.shell.commands import Result, ShellCommands, common_prefix
from ygg.admin.shell.keyfiles import AuthorizedKeysFile, load_host_key, parse_authorized_keys
from ygg.admin.shell.terminal import TerminalShell
from ygg.service import Node


def typed(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"got": args}


def refuse(node: Any, args: dict[str, Any]) -> None:
    raise AdminError("not today")


def rows(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"rows": [{"name": "a", "n": 1, "ok": True}, {"name": "bb", "l": [1, 2]}]}


def make_registry() -> Registry:
    registry = Registry()
    for method in (
        Method("getTUN", "Show TUN", lambda n, a: {"enabled": False}),
        Method("getPeers", "Show peers", lambda n, a: {"peers": []}, table="peers"),
        Method("getPaths", "Show paths", lambda n, a: {"paths": []}, table="paths"),
        Method(
            "pluginTyped",
            "Typed arguments",
            typed,
            (Arg("text", help="any text"), Arg("flag", "bool"), Arg("count", "number")),
            help="Longer help\nover two lines.",
        ),
        Method("pluginRows", "Rows", rows, table="rows"),
        Method("pluginRefuse", "Refuses", refuse),
    ):
        registry.register(method)
    return registry


class CommandTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.commands = ShellCommands(None, make_registry())

    def run_line(self, line: str) -> Result:
        return self.successResultOf(self.commands.run(line))

    def test_tables_as_yggdrasilctl(self) -> None:
        self.assertEqual(self.run_line("gettun").text, "TUN enabled:\tfalse\t\n")
        self.assertEqual(self.run_line("getPeers").text, tables.render("getpeers", {"peers": []}))

    def test_json(self) -> None:
        self.assertEqual(self.run_line("getTUN -json").text, '{\n  "enabled": false\n}\n')
        self.assertEqual(self.run_line("--json getTUN").text, '{\n  "enabled": false\n}\n')

    def test_plugin_rows_as_a_table(self) -> None:
        self.assertEqual(
            self.run_line("pluginRows").text,
            "name\tn\t ok \t  l   \na   \t1\ttrue\t     \t\nbb  \t \t    \t[1 2]\t\n",
        )

    def test_typed_arguments(self) -> None:
        result = self.run_line("pluginTyped text='two words' FLAG=yes count=2.5")
        self.assertIn('"text": "two words"', result.text)
        self.assertIn('"flag": true', result.text)
        self.assertIn('"count": 2.5', result.text)
        for line, error in (
            ("pluginTyped flag=maybe", "flag: expected true or false, got 'maybe'"),
            ("pluginTyped count=x", "count: expected a number, got 'x'"),
            (
                "pluginTyped other=1",
                "pluginTyped has no argument 'other' (it takes text, flag, count)",
            ),
            ("pluginTyped text", "expected key=value, got 'text'"),
            ("getTUN x=1", "getTUN has no argument 'x' (it takes no arguments)"),
            ("pluginTyped text='open", "No closing quotation"),
            ("pluginRefuse", "not today"),
            ("nope", "unknown command 'nope', try 'help'"),
        ):
            result = self.run_line(line)
            self.assertEqual((result.status, result.error), (1, True), line)
            self.assertEqual(result.text, f"Error: {error}\n")

    def test_help(self) -> None:
        text = self.run_line("help").text
        self.assertIn("\npluginTyped \ttext=..., flag=..., count=...\tTyped arguments ", text)
        self.assertIn("exit", text)
        self.assertEqual(
            self.run_line("help plugintyped").text,
            "pluginTyped text=... flag=... count=...\n  Typed arguments\n  text: any text\n"
            "  flag: bool\n  count: number\n\n  Longer help\n  over two lines.\n",
        )
        self.assertEqual(self.run_line("help nope").status, 1)

    def test_exit_and_blank(self) -> None:
        self.assertTrue(self.run_line("exit").exit)
        self.assertTrue(self.run_line("quit").exit)
        self.assertEqual(self.run_line("   "), Result(""))

    def test_completion(self) -> None:
        complete = self.commands.complete
        self.assertEqual(complete("getP"), ["getPaths", "getPeers"])
        self.assertEqual(complete("GETPE"), ["getPeers"])
        self.assertEqual(complete(""), sorted(complete("")))
        self.assertIn("help", complete("he"))
        self.assertEqual(complete("help plugin"), ["pluginRefuse", "pluginRows", "pluginTyped"])
        self.assertEqual(complete("pluginTyped "), ["-json", "count=", "flag=", "text="])
        self.assertEqual(complete("pluginTyped text=x f"), ["flag="])
        self.assertEqual(complete("pluginTyped text=x t"), [])
        self.assertEqual(complete("pluginTyped text=ab"), [])
        self.assertEqual(complete("nope "), [])
        self.assertEqual(common_prefix(["getPaths", "getpeers"]), "getP")


class TerminalTests(SynchronousTestCase):
    """The line editor on an in-memory terminal."""

    def setUp(self) -> None:
        self.finished: list[int] = []
        self.terminal = helper.TerminalBuffer()
        self.terminal.connectionMade()
        commands = ShellCommands(None, make_registry())
        self.shell = TerminalShell(commands, self.finished.append, "hello\n")
        self.shell.makeConnection(self.terminal)

    def type(self, text: bytes) -> None:
        for i in range(len(text)):
            self.shell.keystrokeReceived(text[i : i + 1], None)

    def lines(self) -> list[str]:
        screen = bytes(self.terminal).decode()
        return [line.rstrip() for line in screen.splitlines() if line.strip()]

    def test_banner_prompt_and_command(self) -> None:
        self.assertEqual(self.lines(), ["hello", "ygg>"])
        self.type(b"getTUN\r")
        self.assertEqual(self.lines(), ["hello", "ygg> getTUN", "TUN enabled:\tfalse", "ygg>"])

    def test_tab_completion(self) -> None:
        self.type(b"getp\t")  # two choices: case fixed, then listed on a second TAB
        self.assertEqual(self.lines()[-1], "ygg> getP")
        self.type(b"\t")
        self.assertEqual(self.lines()[-2:], ["getPaths  getPeers", "ygg> getP"])
        self.type(b"e\t")
        self.assertEqual(self.lines()[-1], "ygg> getPeers")
        self.assertEqual(b"".join(self.shell.lineBuffer), b"getPeers ")
        self.type(b"\x15pluginT\tc\t")
        self.assertEqual(b"".join(self.shell.lineBuffer), b"pluginTyped count=")
        self.type(b"\tz\t")  # nothing completes: a bell, the line unchanged
        self.assertEqual(b"".join(self.shell.lineBuffer), b"pluginTyped count=z")

    def test_history_and_control_keys(self) -> None:
        self.type(b"getTUN\r")
        self.shell.keystrokeReceived(self.terminal.UP_ARROW, None)
        self.assertEqual(b"".join(self.shell.lineBuffer), b"getTUN")
        self.type(b"\x03")  # ^C: the line is dropped
        self.assertEqual(self.shell.lineBuffer, [])
        self.type(b"x\x04")  # ^D on a line deletes; on an empty line it leaves
        self.assertEqual(self.finished, [])
        self.type(b"\x15\x04")
        self.assertEqual(self.finished, [0])

    def test_exit(self) -> None:
        self.type(b"exit\r")
        self.assertEqual(self.finished, [0])


class KeyFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = short_tempdir("yas")
        self.addCleanup(remove_tree, self.dir)

    def test_host_key_made_once(self) -> None:
        path = f"{self.dir}/new/dir/host_key"
        key = load_host_key(path)
        self.assertEqual(key.type(), "Ed25519")
        self.assertTrue(key.isPublic() is False)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode), 0o700)
        self.assertEqual(keys.Key.fromFile(path + ".pub"), key.public())  # for known_hosts
        self.assertEqual(load_host_key(path), key)

    def test_bad_host_key(self) -> None:
        Path(self.dir, "bad").write_text("not a key")
        cfg = config.AdminShellConfig(
            listen="tcp:0", host_key_file=f"{self.dir}/bad", authorized_keys_file="/nonexistent"
        )
        service = AdminShellService(None, Registry(), cfg, reactor)
        error = self.assertRaises(AdminListenError, service.startService)
        self.assertIn("cannot use host key", str(error))

    def test_authorized_keys(self) -> None:
        one = keys.Key(Ed25519PrivateKey.generate()).public()
        two = keys.Key(Ed25519PrivateKey.generate()).public()
        text = (
            b"# comment\n\n"
            + one.toString("openssh")
            + b" alice@host\n"
            + b'from="10.0.0.1" '
            + two.toString("openssh")
            + b"\n"
            + b"ssh-ed25519 AAAAnotbase64!!\n"
            + b"   "
            + two.toString("openssh")
            + b"\n"
        )
        self.assertEqual(parse_authorized_keys(text), [one, two])
        self.assertEqual(AuthorizedKeysFile(f"{self.dir}/none").getAuthorizedKeys(b"x"), [])


def in_process_node() -> Node:
    cfg = dataclasses.replace(
        config.parse("{}")[0], admin_listen="none", multicast_interfaces=(), if_name="none"
    )
    return Node(cfg, reactor, discovery=features.NONE)


class Collect(protocol.ProcessProtocol):
    """A child's output as it comes, and its exit status."""

    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.ended: defer.Deferred[int] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(reason.value.exitCode)

    @defer.inlineCallbacks
    def expect(self, text: bytes, timeout: float = 10.0) -> Any:
        for _ in range(int(timeout / 0.02)):
            if text in self.out:
                return
            yield deferLater(reactor, 0.02, lambda: None)
        raise AssertionError(f"{text!r} not in {self.out!r}")


class OpenSSHTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.ssh = require_tool("ssh")
        keygen = require_tool("ssh-keygen")
        self.dir = short_tempdir("yas")
        self.addCleanup(remove_tree, self.dir)
        for name in ("allowed", "other"):
            subprocess.run(
                [keygen, "-q", "-t", "ed25519", "-N", "", "-f", f"{self.dir}/{name}"], check=True
            )
        Path(self.dir, "authorized_keys").write_bytes(
            b"# who may log in\n" + Path(self.dir, "allowed.pub").read_bytes()
        )
        self.node = in_process_node()
        self.node.startService()
        self.addCleanup(self.node.stopService)
        cfg = config.AdminShellConfig(
            listen=r"tcp:0:interface=\:\:1",
            host_key_file=f"{self.dir}/host/ssh_host_ed25519_key",
            authorized_keys_file=f"{self.dir}/authorized_keys",
        )
        self.service = AdminShellService(self.node, self.node.admin, cfg, reactor)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.port = (yield self.service.when_listening()).getHost().port
        host_pub = Path(cfg.host_key_file + ".pub").read_text().split()
        Path(self.dir, "known_hosts").write_text(f"[::1]:{self.port} {host_pub[0]} {host_pub[1]}\n")

    def argv(self, key: str = "allowed", *options: str) -> list[str]:
        return [
            self.ssh,
            "-p",
            str(self.port),
            "-i",
            f"{self.dir}/{key}",
            "-F",
            "/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",  # so the host key must be the one in HostKeyFile.pub
            "-o",
            f"UserKnownHostsFile={self.dir}/known_hosts",
            *options,
            "::1",
        ]

    def run_ssh(self, argv: list[str], pty: bool = False) -> Collect:
        collect = Collect()
        reactor.spawnProcess(collect, argv[0], argv, env=dict(os.environ), usePTY=pty)
        return collect

    @defer.inlineCallbacks
    def ssh_command(self, *words: str, key: str = "allowed", options: tuple[str, ...] = ()) -> Any:
        collect = self.run_ssh([*self.argv(key, *options), *words])
        code = yield collect.ended
        return code, collect.out.decode(), collect.err.decode()

    @defer.inlineCallbacks
    def test_one_command(self) -> Any:
        """``ssh node getPeers``: the table yggdrasilctl prints (0.5.12's: the node runs
        v0.5), exit status 0; errors on stderr with status 1."""
        code, out, err = yield self.ssh_command("getPeers")
        self.assertEqual((code, out), (0, tables.render("getPeers", {"peers": []}, "0.5")), err)
        code, out, err = yield self.ssh_command("getSelf")
        self.assertEqual(code, 0)
        self.assertIn(f"Public key:        \t{self.node.public_key.hex()}\t\n", out)
        code, out, err = yield self.ssh_command("getNodeInfo", "key=zz")
        self.assertEqual((code, out), (1, ""))
        self.assertIn(
            "Error: Failed to decode public key: encoding/hex: invalid byte: U+007A 'z'", err
        )
        code, out, err = yield self.ssh_command("addPeer", "uri=tcp://127.0.0.1:1")
        self.assertEqual((code, out), (0, ""))
        self.assertEqual(self.node.configured_peers(), [("tcp://127.0.0.1:1", "")])
        code, out, err = yield self.ssh_command("getTUN", "-json")
        self.assertEqual((code, out), (0, '{\n  "enabled": false\n}\n'))

    @defer.inlineCallbacks
    def test_wrong_key_refused(self) -> Any:
        code, out, err = yield self.ssh_command("getPeers", key="other")
        self.assertEqual((code, out), (255, ""))
        self.assertIn("Permission denied (publickey)", err)

    @defer.inlineCallbacks
    def test_passwords_refused(self) -> Any:
        """Only publickey is offered; a client set on passwords gets nowhere."""
        code, out, err = yield self.ssh_command(
            "getPeers",
            options=(
                "-v",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
                "-o",
                "NumberOfPasswordPrompts=1",
            ),
        )
        self.assertEqual((code, out), (255, ""))
        self.assertIn("Authentications that can continue: publickey\r\n", err)
        self.assertIn("Permission denied (publickey)", err)

    @defer.inlineCallbacks
    def test_piped_commands(self) -> Any:
        """No terminal: one command a line, output as it is, status of the last."""
        collect = self.run_ssh(
            [
                "/bin/sh",
                "-c",
                "printf 'getTUN\\nhelp getPeers\\nnope\\n' | \"$@\"",
                "sh",
                *self.argv("allowed", "-T"),
            ]
        )
        code = yield collect.ended
        self.assertEqual(code, 1)
        self.assertEqual(
            collect.out.decode(),
            # (a node running both versions: getPeers takes version=)
            "TUN enabled:\tfalse\t\ngetPeers version=...\n  Show directly connected peers\n"
            "  version: 0.4 or 0.5: the reply as that version's node gives it\n",
        )
        self.assertIn(b"Error: unknown command 'nope', try 'help'", collect.err)

    @defer.inlineCallbacks
    def test_interactive_terminal(self) -> Any:
        """Through a pty: banner, prompt, a command, completion, help, exit."""
        collect = self.run_ssh([*self.argv("allowed", "-tt")], pty=True)
        yield collect.expect(b"ygg> ")
        self.assertIn(b"ygg admin shell on", collect.out)
        collect.transport.write(b"getSelf\r")
        yield collect.expect(self.node.public_key.hex().encode())
        mark = len(collect.out)
        collect.transport.write(b"getP\t\t")
        yield collect.expect(b"getPaths  getPeers")
        collect.transport.write(b"e\t\r")
        yield collect.expect(b"Last Error")
        self.assertIn(b"getPeers", collect.out[mark:])
        collect.transport.write(b"help\r")
        yield collect.expect(b"Show directly connected peers")
        collect.transport.write(b"exit\r")
        code = yield collect.ended
        self.assertEqual(code, 0)

    @defer.inlineCallbacks
    def test_one_line_per_login(self) -> Any:
        """A session logs one line at info level, its login; the connection's own
        chatter (conch's transport and channel lines) goes to debug."""
        events: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_namespace") == "ygg":
                return  # the node's own lines ("Your IPv6 address is …")
            if event.get("log_level", LogLevel.info) >= LogLevel.info:
                events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        code, _, err = yield self.ssh_command("getTUN")
        self.assertEqual(code, 0, err)
        yield deferLater(reactor, 0.2, lambda: None)  # the connection's end, logged or not
        texts = [formatEvent(e) for e in events]
        self.assertEqual(len(texts), 1, texts)
        self.assertRegex(texts[0], r"^SSH admin shell: .* logged in with key SHA256:")

    @defer.inlineCallbacks
    def test_version_only_crowd_does_not_lock_out_a_login(self) -> Any:
        """Attack 5 over real sockets: 40 connections that send only their version string
        and wait; a key login still gets in (in their places), as at once as usual."""
        crowd = []
        for _ in range(40):
            sock = socket.create_connection(("::1", self.port))
            self.addCleanup(sock.close)
            sock.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            crowd.append(sock)
        yield deferLater(reactor, 0.2, lambda: None)  # all of them accepted and waiting
        code, out, err = yield self.ssh_command("getTUN")
        self.assertEqual((code, out), (0, "TUN enabled:\tfalse\t\n"), err)

    @defer.inlineCallbacks
    def test_stop_ends_sessions(self) -> Any:
        collect = self.run_ssh([*self.argv("allowed", "-tt")], pty=True)
        yield collect.expect(b"ygg> ")
        yield self.service.stopService()
        code = yield collect.ended
        self.assertEqual(code, 255)
