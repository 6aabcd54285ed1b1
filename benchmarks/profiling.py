"""Sampling a running server with py-spy, and reading the samples as a short table.

Needs py-spy on the PATH: run the benchmark with ``uv run --with py-spy ...``.
The samples are py-spy's collapsed stacks (``--format raw``); the summary
gives, for each function, the share of busy samples it appears in
(inclusive: a function counts once per sample however deep it recurses).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def available() -> bool:
    return shutil.which("py-spy") is not None


@contextlib.contextmanager
def sampled(pid: int, output: Path, rate: int = 250, gil: bool = False) -> Iterator[Path]:
    """Record ``pid`` with py-spy while the block runs (without pausing it); with ``gil``,
    only the thread holding the GIL (where one process's Python CPU goes), not threads
    waiting on a lock, a queue or ``fdatasync``."""
    argv = ["py-spy", "record", "--pid", str(pid), "--rate", str(rate)]
    argv += ["--gil"] if gil else []
    argv += ["--format", "raw", "--nonblocking", "--output", str(output)]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield output
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def add_options(parser: argparse.ArgumentParser, sampled: str, top: int) -> None:
    """``--profile DIR`` and ``--profile-top N``; ``sampled`` says which processes."""
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help=f"sample {sampled} with py-spy into DIR (uv run --with py-spy ...)",
    )
    parser.add_argument("--profile-top", type=int, default=top)


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse ``--profile`` without py-spy on the PATH, saying how to run with it."""
    if args.profile and not available():
        command = f"uv run --with py-spy python benchmarks/{parser.prog}"
        parser.error(f"--profile needs py-spy: {command}")


@contextlib.contextmanager
def maybe_sampled(
    directory: Path | None, pid: int, label: str, gil: bool = False
) -> Iterator[Path | None]:
    """py-spy samples of ``pid`` into ``directory`` while the block runs, if one is given."""
    if directory is None:
        yield None
        return
    directory.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in label).strip("-")
    with sampled(pid, directory / f"{slug}.txt", gil=gil) as samples:
        yield samples


def _frames(stack: str) -> list[str]:
    # A frame is "function (file:line)"; keep "file:function", without the line.
    names = []
    for frame in stack.split(";"):
        function, _, where = frame.partition(" (")
        path = where.rsplit(":", 1)[0]
        short = "/".join(path.split("/")[-2:])
        names.append(f"{short}:{function}")
    return names


def summary(collapsed: Path, top: int = 30, match: str = "") -> list[tuple[str, float]]:
    """The ``top`` functions by inclusive share of samples (of those whose stack has ``match``)."""
    counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or match not in stack:
            continue
        total += int(count)
        for name in set(_frames(stack)):
            counts[name] += int(count)
    if not total:
        return []
    return [(name, n / total) for name, n in counts.most_common(top)]


def print_summary(collapsed: Path, top: int = 30, match: str = "") -> None:
    rows = summary(collapsed, top, match)
    print(
        f"py-spy {collapsed.name}: inclusive share of samples"
        + (f" under {match}" if match else "")
    )
    for name, share in rows:
        print(f"  {share:6.1%}  {name}")
