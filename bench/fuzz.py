"""The attack campaign, kept: every decoder of ygg fed a million mutated and random inputs.

Each target (tests/fuzz_targets.py) takes real captures and valid encodings as seeds and
mutates them (tests/fuzzing.py); an exception other than the entry point's documented
refusal (``ygg.errors.DecodeError``, ``ConfigError``, ``LinkURIError``…), an error logged,
or a broken promise of the harness (a reply count, a re-encoding) is a finding.  Findings
are printed and saved, input in hex and traceback, under bench/out/fuzz-<time>/.

    python bench/fuzz.py [--count 1000000] [--only NAME[,NAME…]] [--seed 1]
                         [--seconds S] [--jobs 2] [--list]

Targets run in parallel processes (``--jobs``, default one per core); ``--seconds`` caps
each target's time, whatever ``--count`` says.  The same seed gives the same inputs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import random
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from twisted.logger import globalLogBeginner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzz_targets import BY_NAME, TARGETS, Target  # noqa: E402
from tests.fuzzing import Result, fuzz  # noqa: E402

PROGRESS_EVERY = 30.0  # seconds between a target's progress lines


def run_target(target: Target, count: int, seed: int, seconds: float | None) -> Result:
    """One target, start to end, in this process."""
    rng = random.Random(f"{seed}/{target.name}")
    harness = target.build(rng)
    return fuzz(
        target.name, harness.generate, harness.feed, target.expected, count=count, seconds=seconds
    )


def _worker(target_name: str, count: int, seed: int, seconds: float | None, out: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent answers Ctrl-C for everyone
    # Events go to the harness's own observer (errors are findings), nowhere else.
    globalLogBeginner.beginLoggingTo([lambda event: None], redirectStandardIO=False)
    target = BY_NAME[target_name]
    last = [time.monotonic()]

    def progress(result: Result) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            out.put(("progress", target_name, result.row()))

    try:
        rng = random.Random(f"{seed}/{target.name}")
        harness = target.build(rng)
        result = fuzz(
            target.name,
            harness.generate,
            harness.feed,
            target.expected,
            count=count,
            seconds=seconds,
            progress=progress,
        )
        out.put(("done", target_name, asdict(result)))
    except BaseException as e:  # a harness that cannot start is reported, not hidden
        out.put(("failed", target_name, f"{type(e).__name__}: {e}"))


def save(outdir: Path, result: dict[str, Any]) -> list[Path]:
    """The findings of one target as <name>-<n>.hex and <name>-<n>.txt."""
    paths = []
    for n, found in enumerate(result["found"], 1):
        outdir.mkdir(parents=True, exist_ok=True)
        stem = outdir / f"{result['name']}-{n}"
        stem.with_suffix(".hex").write_text(found["data"].hex() + "\n")
        stem.with_suffix(".txt").write_text(
            f"target {result['name']}, input #{found['index']}\n{found['error']}\n\n"
            f"input (hex): {found['data'].hex()}\n\n{found['traceback']}"
        )
        paths.append(stem.with_suffix(".txt"))
    return paths


def replay(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Feed one saved input to a freshly built harness; its traceback if it still fails."""
    if args.only not in BY_NAME:
        parser.error("--replay needs --only with one target name")
    target = BY_NAME[args.only]
    data = bytes.fromhex(Path(args.replay).read_text().strip())
    harness = target.build(random.Random(f"{args.seed}/{target.name}"))
    result = fuzz(target.name, lambda: data, harness.feed, target.expected, count=1)
    for found in result.found:
        print(found.traceback)
    print(f"{target.name}: {'unexpected' if result.unexpected else 'fine'}")
    return 1 if result.unexpected else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--only", default="", help="comma-separated target names")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=None, help="time budget per target")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--list", action="store_true", help="list the targets and stop")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.add_argument(
        "--replay", metavar="FILE.hex", help="feed one saved input to the --only target"
    )
    args = parser.parse_args(argv)

    if args.replay:
        return replay(parser, args)

    if args.list:
        for target in TARGETS:
            print(f"{target.name:12} {target.entry}")
        return 0
    names = [n for n in args.only.split(",") if n] or [t.name for t in TARGETS]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; --list shows them")

    outdir = ROOT / "bench" / "out" / time.strftime("fuzz-%Y%m%d-%H%M%S")
    print(
        f"fuzzing {len(names)} target(s), {args.count} inputs each, seed {args.seed}, "
        f"{args.jobs} job(s)" + (f", at most {args.seconds:g} s each" if args.seconds else ""),
        flush=True,
    )
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    waiting = list(names)
    running: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    findings: list[Path] = []
    try:
        while waiting or running:
            while waiting and len(running) < args.jobs:
                name = waiting.pop(0)
                proc = context.Process(
                    target=_worker, args=(name, args.count, args.seed, args.seconds, out)
                )
                proc.start()
                running[name] = proc
            try:
                kind, name, payload = out.get(timeout=0.5)
            except queue.Empty:
                for name, proc in list(running.items()):
                    if not proc.is_alive() and proc.exitcode != 0:
                        failed[name] = f"worker exited with {proc.exitcode}"
                        del running[name]
                continue
            if kind == "progress":
                row = payload
                print(
                    f"  {name}: {row['inputs']} inputs in {row['seconds']:.0f} s, "
                    f"{row['unexpected']} unexpected",
                    flush=True,
                )
                continue
            running.pop(name).join()
            if kind == "failed":
                failed[name] = payload
                print(f"  {name}: could not run: {payload}", flush=True)
                continue
            results[name] = payload
            findings += save(outdir, payload)  # now: an interrupted campaign keeps them
            print(
                f"  {name}: done, {payload['inputs']} inputs in {payload['seconds']:.1f} s, "
                f"{payload['unexpected']} unexpected",
                flush=True,
            )
    finally:
        for proc in running.values():  # Ctrl-C or an error: stop the workers we started
            proc.terminate()
            proc.join()

    rows = [
        {
            **Result(**{**results[n], "found": []}).row(),
            "rate": results[n]["inputs"] / max(results[n]["seconds"], 1e-9),
        }
        for n in names
        if n in results
    ]
    if args.json:
        print(json.dumps({"rows": rows, "failed": failed}, indent=2))
    else:
        print()
        print("| decoder | inputs | seconds | inputs/s | unexpected |")
        print("|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['decoder']} | {row['inputs']:,} | {row['seconds']:.0f} | "
                f"{row['rate']:,.0f} | {row['unexpected']} |"
            )
        for name, why in failed.items():
            print(f"| {name} | — | — | — | could not run: {why} |")
    for name in names:
        for found in results.get(name, {}).get("found", [])[:3]:
            print(f"\n== {name}, input #{found['index']}: {found['error']}")
            print(f"input (hex): {found['data'].hex()[:400]}")
            print(found["traceback"].rstrip()[-3000:])
    if findings:
        print(f"\nfindings saved under {outdir.relative_to(ROOT)}/")
    return 1 if failed or any(row["unexpected"] for row in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: workers stopped on the way out; one line, no traceback
        print("bench/fuzz.py: interrupted", file=sys.stderr)
        sys.exit(130)
