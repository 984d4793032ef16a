"""The node's edges as a user meets them: ``ygg run`` and ``twistd -n ygg`` options, log
levels, and stopping on SIGINT/SIGTERM — real processes; the log plumbing in-process."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from twisted.application.service import Application
from twisted.logger import ILogObserver, Logger, LogLevel
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import TWISTD, YGG, require_root
from tests.processes import Process, run
from ygg import logs, tap
from ygg.service import Node

QUIET = {"AdminListen": "none", "IfName": "none", "MulticastInterfaces": []}
# Multicast on, on no interface: the module starts (and says so at debug) but sends nothing.
MULTICAST_NOWHERE = [{"Regex": "^$", "Beacon": True, "Listen": True, "Port": 0}]
# In a network namespace of its own (root): a TUN that nothing else sees.
ISOLATED = ["unshare", "--net", "--"]


class NodeProcessCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ygg-runner-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def config(self, **settings: object) -> str:
        path = os.path.join(self.dir, "node.conf")
        Path(path).write_text(json.dumps({**QUIET, **settings}))
        return path

    def start(self, *argv: str) -> Process:
        proc = Process(argv, cwd=self.dir)
        self.addCleanup(proc.kill)
        return proc

    def finished(self, proc: Process, timeout: float = 15.0) -> int:
        """Wait for a process expected to exit by itself (signal 0 sends nothing)."""
        try:
            return proc.stop(sig=0, timeout=timeout)
        except AssertionError:
            self.fail(f"still running after {timeout}s:\n{proc.output}")


class OptionErrorTests(NodeProcessCase):
    def test_logto_that_cannot_be_opened(self) -> None:
        path = self.config()
        result = run([YGG, "run", "--config", path, "--logto", "/proc/nope/x.log"], timeout=30)
        self.assertEqual(
            (result.returncode, result.stdout, result.stderr.strip().splitlines()),
            (1, "", ["ygg run: --logto /proc/nope/x.log: No such file or directory"]),
        )

    def test_unknown_loglevel_refused_by_ygg_run(self) -> None:
        proc = self.start(YGG, "run", "--config", self.config(), "--loglevel", "bogus")
        self.assertEqual(self.finished(proc), 1, proc.output)
        self.assertEqual(
            proc.output.strip().splitlines(),
            ["ygg run: --loglevel bogus: not one of error, warn, info, debug, trace"],
        )

    def test_unknown_loglevel_refused_by_twistd(self) -> None:
        argv = [TWISTD, "-n", "--pidfile=", "ygg", "--config", self.config()]
        proc = self.start(*argv, "--loglevel", "bogus")
        self.assertEqual(self.finished(proc), 1, proc.output)
        self.assertIn("--loglevel bogus: not one of error, warn, info, debug, trace", proc.output)

    def test_go_style_flag_refused_too(self) -> None:
        result = run([YGG, "-useconffile", self.config(), "-loglevel", "loud"], timeout=30)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("--loglevel loud: not one of", result.stderr)


class LogLevelTests(NodeProcessCase):
    """One default (info) and one --loglevel for ``ygg run`` and ``twistd -n ygg``."""

    def argvs(self, path: str, *extra: str) -> dict[str, list[str]]:
        return {
            "ygg run": [YGG, "run", "--config", path, *extra],
            "twistd": [TWISTD, "-n", "--pidfile=", "ygg", "--config", path, *extra],
        }

    def test_no_debug_lines_by_default(self) -> None:
        path = self.config(MulticastInterfaces=MULTICAST_NOWHERE)
        for name, argv in self.argvs(path).items():
            proc = self.start(*argv)
            proc.wait_for("Your IPv6 subnet is")
            self.assertEqual(proc.stop(signal.SIGTERM), 0, proc.output)
            self.assertNotIn("Starting multicast module", proc.output, name)
            self.assertNotIn("#debug]", proc.output, name)
            self.assertNotIn("Main loop terminated", proc.output, name)  # the reactor's, after
            self.assertIn("Stopped", proc.output, name)

    def test_debug_when_asked(self) -> None:
        path = self.config(MulticastInterfaces=MULTICAST_NOWHERE)
        for name, argv in self.argvs(path, "--loglevel", "debug").items():
            proc = self.start(*argv)
            proc.wait_for("Your IPv6 subnet is")
            self.assertEqual(proc.stop(signal.SIGTERM), 0, proc.output)
            self.assertIn("Starting multicast module", proc.output, name)

    def test_twistd_logfile(self) -> None:
        """twistd's --logfile still says where the (filtered) log goes."""
        log_path = os.path.join(self.dir, "twistd.log")
        path = self.config(MulticastInterfaces=MULTICAST_NOWHERE)
        argv = [TWISTD, "-n", "--pidfile=", f"--logfile={log_path}", "ygg", "--config", path]
        proc = self.start(*argv)
        log_file = Path(log_path)
        deadline = time.monotonic() + 20
        while not (log_file.exists() and "Your IPv6 subnet is" in log_file.read_text()):
            self.assertLess(time.monotonic(), deadline, "no start in the log file")
            time.sleep(0.1)
        self.assertEqual(proc.stop(signal.SIGTERM), 0, proc.output)
        text = log_file.read_text()
        self.assertIn("[ygg#info] Stopped", text)
        self.assertNotIn("#debug]", text)
        self.assertEqual(proc.output, "")

    def test_warn_hides_info(self) -> None:
        path = self.config(Frobnicator=1)  # an unknown key: a warning at start
        for name, argv in self.argvs(path, "--loglevel", "warn").items():
            proc = self.start(*argv)
            proc.wait_for("unknown config key 'Frobnicator' ignored")
            self.assertEqual(proc.stop(signal.SIGTERM), 0, proc.output)
            self.assertNotIn("Your IPv6 address", proc.output, name)
            self.assertNotIn("Stopped", proc.output, name)

    def test_tun_internals_not_at_info(self) -> None:
        """Twisted's TUN port announces itself ("<class …> starting on b''", "(Tuntap … Closed)"):
        internals, shown at debug only."""
        require_root()
        path = self.config(IfName="auto")
        for name, argv in self.argvs(path).items():
            proc = self.start(*ISOLATED, *argv)
            proc.wait_for("Interface MTU:")
            proc.wait_for("Your IPv6 subnet is")
            self.assertEqual(proc.stop(signal.SIGTERM), 0, proc.output)
            self.assertIn("Stopped", proc.output)
            for internal in ("_TunProtocol", "starting on", "Tuntap"):
                self.assertNotIn(internal, proc.output, name)
        proc = self.start(*ISOLATED, YGG, "run", "--config", path, "--loglevel", "debug")
        proc.wait_for("Your IPv6 subnet is")
        self.assertEqual(proc.stop(signal.SIGINT), 0, proc.output)
        self.assertIn("_TunProtocol'> starting on", proc.output)
        self.assertIn("Closed)", proc.output)


class StopSignalTests(NodeProcessCase):
    """SIGINT and SIGTERM stop the node, exit 0, however it was started."""

    def background(self, *argv: str) -> tuple[Process, int]:
        """``bash -c 'cmd & wait'``: a non-interactive shell starts its background jobs with
        SIGINT ignored.  Returns the shell and the node's PID."""
        shell = self.start("bash", "-c", '"$@" & wait $!', "bash", *argv)
        children = Path(f"/proc/{shell.proc.pid}/task/{shell.proc.pid}/children")
        deadline = time.monotonic() + 10
        while not children.read_text().split():
            if time.monotonic() > deadline:
                self.fail("the shell started no job")
            time.sleep(0.05)
        return shell, int(children.read_text().split()[0])

    def test_sigint_stops_a_node_started_with_sigint_ignored(self) -> None:
        path = self.config()
        for argv in (
            [YGG, "run", "--config", path],
            [TWISTD, "-n", "--pidfile=", "ygg", "--config", path],
        ):
            shell, node = self.background(*argv)
            shell.wait_for("Your IPv6 subnet is")
            os.kill(node, signal.SIGINT)
            try:
                status = shell.stop(sig=0, timeout=15)
            except AssertionError:
                os.kill(node, signal.SIGKILL)
                self.fail(f"{argv[0]} ignored SIGINT:\n{shell.output}")
            self.assertEqual(status, 0, shell.output)
            self.assertIn("Stopped", shell.output)

    def test_twistd_exits_zero_on_sigint_and_sigterm(self) -> None:
        path = self.config()
        for sig in (signal.SIGINT, signal.SIGTERM):
            proc = self.start(TWISTD, "-n", "--pidfile=", "ygg", "--config", path)
            proc.wait_for("Your IPv6 subnet is")
            self.assertEqual(proc.stop(sig), 0, proc.output)
            self.assertIn("Stopped", proc.output)
            self.assertNotIn("Traceback", proc.output)


class LevelNameTests(SynchronousTestCase):
    def test_levels(self) -> None:
        self.assertEqual(logs.level_named("info"), LogLevel.info)
        self.assertEqual(logs.level_named("WARN"), LogLevel.warn)  # Go lower-cases it too
        self.assertEqual(logs.level_named("trace"), LogLevel.debug)
        with self.assertRaises(ValueError) as caught:
            logs.level_named("bogus")
        self.assertEqual(
            str(caught.exception), "--loglevel bogus: not one of error, warn, info, debug, trace"
        )

    def test_options(self) -> None:
        options = tap.Options()
        options.parseOptions(["--autoconf"])
        self.assertEqual(options.log_level, LogLevel.info)
        options = tap.Options()
        options.parseOptions(["--autoconf", "--loglevel", "debug"])
        self.assertEqual(options.log_level, LogLevel.debug)
        with self.assertRaises(UsageError):
            tap.Options().parseOptions(["--autoconf", "--loglevel", "bogus"])


class TwistdLoggingTests(SynchronousTestCase):
    """Under twistd, makeService hands twistd (through the application's ILogObserver
    component) an observer filtered to --loglevel, writing where twistd would."""

    def server_options(self, **given: object) -> dict[str, object]:
        return {"nodaemon": True, "logfile": "", "syslog": False, "prefix": "ygg", **given}

    def twistd_application(self, argv: list[str], server: dict[str, object]) -> Application:
        from twisted.internet.testing import MemoryReactorClock

        options = tap.Options()
        options.parent = server  # type: ignore[assignment]  # as twistd's ServerOptions
        options.parseOptions(["--autoconf", *argv])
        root = tap.makeService(options, MemoryReactorClock())
        application = Application("ygg")
        root.setServiceParent(application)
        self.assertIsInstance(root.getServiceNamed("node"), Node)
        return application

    def emit(self, observer: ILogObserver) -> None:
        log = Logger(namespace="ygg.test", observer=observer)
        log.debug("a debug line")
        log.info("an info line")

    def test_stdout_under_nodaemon(self) -> None:
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        application = self.twistd_application([], self.server_options())
        self.emit(application.getComponent(ILogObserver))
        self.assertIn("[ygg.test#info] an info line", out.getvalue())
        self.assertNotIn("a debug line", out.getvalue())

    def test_logfile_and_level(self) -> None:
        directory = tempfile.mkdtemp(prefix="ygg-twistd-log-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "node.log")
        server = self.server_options(logfile=path, nodaemon=False)
        self.addCleanup(signal.signal, signal.SIGUSR1, signal.getsignal(signal.SIGUSR1))
        application = self.twistd_application(["--loglevel", "debug"], server)
        self.emit(application.getComponent(ILogObserver))
        text = Path(path).read_text()
        self.assertIn("a debug line", text)
        self.assertIn("an info line", text)

    def test_twistd_logger_option_wins(self) -> None:
        application = self.twistd_application([], self.server_options(logger=lambda: None))
        self.assertIsNone(application.getComponent(ILogObserver))

    def test_not_under_twistd(self) -> None:
        """ygg run and tests get the node itself and leave logging (and signals) alone."""
        from twisted.internet.testing import MemoryReactorClock

        before = signal.getsignal(signal.SIGINT)
        options = tap.Options()
        options.parseOptions(["--autoconf"])
        self.assertIsInstance(tap.makeService(options, MemoryReactorClock()), Node)
        self.assertEqual(signal.getsignal(signal.SIGINT), before)
