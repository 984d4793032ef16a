"""The admin shell's two faces: a line editor on a terminal (history, completion, the
usual control keys) and plain lines without one (``ssh -T``, pipes).  Both run lines
through ``ShellCommands`` and write to an ``Output``: the SSH session channel."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any
from typing import Protocol as Interface

from twisted.conch.recvline import HistoricRecvLine
from twisted.internet.protocol import Protocol

from ygg.admin.shell.commands import Result, ShellCommands, common_prefix


class Output(Interface):
    """Where a shell writes: the client's stdout and stderr."""

    def write(self, data: bytes) -> None: ...

    def write_error(self, data: bytes) -> None: ...


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
        self.queue: deque[str] = deque()
        self.busy = False
        self.looping = False
        self.ended = False
        self.status = 0

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        self.queue.extend(line.decode("utf-8", "replace").strip() for line in lines)
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
        """Run the queued lines in turn; a loop, so a long pipe takes constant stack."""
        if self.looping:
            return  # a command that answered at once: the loop further up goes on
        self.looping = True
        try:
            while not self.busy and self.queue:
                line = self.queue.popleft()
                if line:
                    self.busy = True
                    self.commands.run(line).addCallback(self._show)
        finally:
            self.looping = False
        if not self.busy and self.ended:
            self.finish(self.status)

    def _show(self, result: Result) -> None:
        self.busy = False
        if result.exit:
            self.queue.clear()
            self.ended = True
        else:
            self.status = result.status
            write(self.transport, result, "\n")
        self._next()

    def connectionLost(self, reason: Any = None) -> None:
        self.queue.clear()


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def write(out: Output, result: Result, newline: str) -> None:
    """A command's output, errors to stderr, lines ended with ``newline``."""
    data = result.text.replace("\n", newline).encode()
    if result.error:
        out.write_error(data)
    else:
        out.write(data)
