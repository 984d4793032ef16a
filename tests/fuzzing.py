"""A small seeded mutation fuzzer: the engine behind bench/fuzz.py and tests/test_fuzz.py.

Inputs are real captures and valid encodings (the seeds), mutated the way coverage-guided
fuzzers mutate (bit flips, interesting integers and varints, inserted, deleted, repeated
and spliced ranges, dictionary tokens), plus plain random bytes.  Everything comes from
one ``random.Random`` per target, so a run is fully determined by its seed and replayable.
"""

from __future__ import annotations

import random
import struct
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.logger import LogLevel, formatEvent, globalLogPublisher

INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x05, 0x09, 0x0A, 0x20, 0x40, 0x7F, 0x80, 0x81, 0xFE, 0xFF)
INTERESTING_INTS = (
    0,
    1,
    2,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**53,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64 - 1,
)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


#: Go varints at their edges: minimal forms, non-minimal ones, overflowing and unterminated.
VARINTS = (
    *(_uvarint(v) for v in INTERESTING_INTS),
    b"\x80\x00",
    b"\x80" * 9 + b"\x00",
    b"\x80" * 9 + b"\x01",
    b"\xff" * 9 + b"\x01",
    b"\xff" * 9 + b"\x02",
    b"\xff" * 10 + b"\x01",
    b"\xff" * 11,
)


class PropertyViolation(AssertionError):
    """A harness's own check failed: wrong number of replies, an error logged, …"""


@dataclass
class Found:
    """One unexpected exception, with the input that raised it."""

    index: int
    data: bytes
    error: str
    traceback: str


@dataclass
class Result:
    name: str
    inputs: int = 0
    seconds: float = 0.0
    unexpected: int = 0
    found: list[Found] = field(default_factory=list)  # the first of each kind

    def row(self) -> dict[str, Any]:
        return {
            "decoder": self.name,
            "inputs": self.inputs,
            "seconds": round(self.seconds, 1),
            "unexpected": self.unexpected,
        }


class Mutator:
    """Seeded inputs for one target: mutated seeds, fresh structured ones, random bytes.

    ``fresh`` makes a new valid input from the rng (random field values through the real
    encoders); ``tokens`` are dictionary words worth inserting whole (keywords, escapes).
    """

    def __init__(
        self,
        rng: random.Random,
        seeds: Sequence[bytes],
        *,
        fresh: Callable[[random.Random], bytes] | None = None,
        tokens: Sequence[bytes] = (),
        max_size: int = 4096,
    ) -> None:
        if not seeds and fresh is None:
            raise ValueError("a mutator needs seeds or a fresh-input maker")
        self.rng = rng
        self.seeds = list(seeds)
        self.fresh = fresh
        self.tokens = list(tokens) + list(VARINTS)
        self.max_size = max_size
        self._ops = (
            self._flip,
            self._set_byte,
            self._interesting_byte,
            self._arith,
            self._insert_random,
            self._delete,
            self._duplicate,
            self._interesting_int,
            self._token,
            self._token,
            self._truncate,
            self._splice,
            self._repeat,
            self._swap,
        )

    # -- inputs -------------------------------------------------------------------------

    def random_bytes(self) -> bytes:
        size = int(2 ** (self.rng.random() * 11)) - 1  # 0..2047, most of them short
        return self.rng.randbytes(size)

    def seed(self) -> bytes:
        rng = self.rng
        if self.fresh is not None and (not self.seeds or rng.random() < 0.4):
            return self.fresh(rng)
        return rng.choice(self.seeds)

    def generate(self) -> bytes:
        r = self.rng.random()
        if r < 0.07:
            return self.random_bytes()
        if r < 0.15:
            return self.seed()
        return self.mutate(self.seed())

    def mutate(self, data: bytes) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        for _ in range(1 + min(int(rng.expovariate(0.7)), 15)):
            rng.choice(self._ops)(buf)
        if len(buf) > self.max_size:
            del buf[self.max_size :]
        return bytes(buf)

    # -- mutations on a bytearray, in place ---------------------------------------------

    def _pos(self, buf: bytearray, extra: int = 0) -> int:
        return self.rng.randrange(len(buf) + extra) if len(buf) + extra else 0

    def _flip(self, buf: bytearray) -> None:
        if buf:
            i = self._pos(buf)
            buf[i] ^= 1 << self.rng.randrange(8)

    def _set_byte(self, buf: bytearray) -> None:
        if buf:
            buf[self._pos(buf)] = self.rng.randrange(256)

    def _interesting_byte(self, buf: bytearray) -> None:
        if buf:
            buf[self._pos(buf)] = self.rng.choice(INTERESTING_BYTES)

    def _arith(self, buf: bytearray) -> None:
        if buf:
            i = self._pos(buf)
            buf[i] = (buf[i] + self.rng.randint(-16, 16)) & 0xFF

    def _insert_random(self, buf: bytearray) -> None:
        i = self._pos(buf, 1)
        buf[i:i] = self.rng.randbytes(self.rng.randint(1, 16))

    def _delete(self, buf: bytearray) -> None:
        if buf:
            i = self._pos(buf)
            del buf[i : i + self.rng.randint(1, max(1, len(buf) // 4))]

    def _duplicate(self, buf: bytearray) -> None:
        if buf:
            i = self._pos(buf)
            chunk = buf[i : i + self.rng.randint(1, 64)]
            j = self._pos(buf, 1)
            buf[j:j] = chunk

    def _interesting_int(self, buf: bytearray) -> None:
        rng = self.rng
        value = rng.choice(INTERESTING_INTS)
        size, code = rng.choice(((2, "H"), (4, "I"), (8, "Q")))
        packed = struct.pack(rng.choice("<>") + code, value & ((1 << (8 * size)) - 1))
        i = self._pos(buf, 1)
        if rng.random() < 0.5:
            buf[i : i + size] = packed  # overwrite
        else:
            buf[i:i] = packed

    def _token(self, buf: bytearray) -> None:
        rng = self.rng
        token = rng.choice(self.tokens)
        i = self._pos(buf, 1)
        if rng.random() < 0.5:
            buf[i : i + len(token)] = token
        else:
            buf[i:i] = token

    def _truncate(self, buf: bytearray) -> None:
        if buf:
            del buf[self._pos(buf) :]

    def _splice(self, buf: bytearray) -> None:
        other = self.seed()
        if other:
            i = self._pos(buf, 1)
            buf[i:] = other[self.rng.randrange(len(other)) :]

    def _repeat(self, buf: bytearray) -> None:
        if buf:
            i = self._pos(buf)
            chunk = bytes(buf[i : i + self.rng.randint(1, 8)])
            buf[i:i] = chunk * self.rng.choice((2, 8, 100, 1000))

    def _swap(self, buf: bytearray) -> None:
        if len(buf) >= 4:
            size = self.rng.randint(1, len(buf) // 2)
            i = self.rng.randrange(len(buf) - size + 1)
            j = self.rng.randrange(len(buf) - size + 1)
            buf[i : i + size], buf[j : j + size] = buf[j : j + size], buf[i : i + size]


def text_of(data: bytes) -> str:
    """Fuzz bytes as the str a JSON or HJSON decoder could hand over: UTF-8, lone
    surrogates included where the bytes encode them (JSON's ``"\\ud800"`` gives those)."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape")


class ErrorLog:
    """Log events at error level or above (and every logged failure) while installed."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        level = event.get("log_level")
        if "log_failure" in event or (level is not None and level >= LogLevel.error):
            self.events.append(event)

    def __enter__(self) -> ErrorLog:
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc: object) -> None:
        globalLogPublisher.removeObserver(self)

    def check(self) -> None:
        """PropertyViolation naming what was logged since the last check."""
        if self.events:
            events, self.events = self.events, []
            texts = []
            for event in events:
                text = formatEvent(event)
                failure = event.get("log_failure")
                if failure is not None:
                    text += "\n" + failure.getTraceback()
                texts.append(text)
            raise PropertyViolation("logged an error:\n" + "\n".join(texts))


def error_kind(exc: BaseException) -> tuple[str, str, int]:
    """What makes two findings the same bug: the type and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = frames[-1] if frames else None
    return (
        type(exc).__name__,
        where.filename if where else "",
        where.lineno if where and where.lineno else 0,
    )


def fuzz(
    name: str,
    generate: Callable[[], bytes],
    feed: Callable[[bytes], None],
    expected: tuple[type[BaseException], ...],
    *,
    count: int,
    seconds: float | None = None,
    keep: int = 20,
    progress: Callable[[Result], None] | None = None,
) -> Result:
    """Feed ``count`` generated inputs (or as many as fit in ``seconds``) to ``feed``.

    An exception of one of the ``expected`` types is the decoder saying no; any other is
    counted, and the first input of each kind (type and place) is kept with its traceback.
    """
    result = Result(name)
    kinds: set[tuple[str, str, int]] = set()
    start = time.perf_counter()
    deadline = None if seconds is None else start + seconds
    check_every = 256

    def record(i: int, data: bytes, e: Exception) -> None:
        result.unexpected += 1
        kind = error_kind(e)
        if kind not in kinds and len(result.found) < keep:
            kinds.add(kind)
            text = "".join(traceback.format_exception(e))
            result.found.append(Found(i, data, f"{type(e).__name__}: {e}", text))

    with ErrorLog() as errors:
        for i in range(count):
            data = generate()
            try:
                feed(data)
            except expected:
                pass
            except Exception as e:  # the point: every other exception is a finding
                record(i, data, e)
            try:
                errors.check()
            except PropertyViolation as e:
                record(i, data, e)
            result.inputs = i + 1
            if i % check_every == check_every - 1:
                now = time.perf_counter()
                result.seconds = now - start
                if progress is not None:
                    progress(result)
                if deadline is not None and now >= deadline:
                    break
    result.seconds = time.perf_counter() - start
    return result
