"""Sampling a running server with py-spy, and reading the samples as a short table.

Needs py-spy on the PATH: run the benchmark with ``uv run --with py-spy ...``.
Run as a script, it reads a raw profile of ``journey_profile.py`` by package (own time).
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


def _samples(collapsed: Path, match: str) -> Iterator[tuple[str, int]]:
    """Each collapsed stack whose text has ``match``, with its count of samples."""
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit() and match in stack:
            yield stack, int(count)


def summary(collapsed: Path, top: int = 30, match: str = "") -> list[tuple[str, float]]:
    """The ``top`` functions by inclusive share of samples (of those whose stack has ``match``)."""
    counts: Counter[str] = Counter()
    total = 0
    for stack, count in _samples(collapsed, match):
        total += count
        for name in set(_frames(stack)):
            counts[name] += count
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


DRIVER_CALLS = frozenset({"DefaultDialect.do_execute", "DefaultDialect.do_commit"})
"""SQLAlchemy's thin wrappers around the driver's ``execute`` and ``commit``: without
``--native``, py-spy gives a C function's time to the Python frame that called it, so
their time is the driver's (SQLite's statement and ``fsync``), not SQLAlchemy's."""

OWNERS = {
    "sqlalchemy": "SQLAlchemy and SQLModel",
    "sqlmodel": "SQLAlchemy and SQLModel",
    "fastapi": "FastAPI, Starlette, uvicorn",
    "starlette": "FastAPI, Starlette, uvicorn",
    "uvicorn": "FastAPI, Starlette, uvicorn",
    "anyio": "FastAPI, Starlette, uvicorn",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "logging": "logging and json",
    "json": "logging and json",
    "workflow": "carepath: workflow/",
    "schedules": "carepath: schedules/",
    "models": "carepath: models/",
    "api": "carepath: api/",
    "transitions": "transitions (the state machine)",
}


def _owner(stack: list[str]) -> str:
    """Who a sample's own time belongs to: the innermost frame of a known package."""
    for frame in reversed(stack):
        function, _, where = frame.partition(" (")
        if function in DRIVER_CALLS:
            return "the driver (SQLite's execute and commit)"
        owner = OWNERS.get(where.split("/", 1)[0]) if "/" in where else None
        if owner is not None:
            return owner
    return "other"


def owners(collapsed: Path, match: str) -> list[tuple[str, float]]:
    """Each owner's share of the own time of the samples whose stack has ``match``."""
    counts: Counter[str] = Counter()
    for stack, count in _samples(collapsed, match):
        counts[_owner(stack.split(";"))] += count
    total = sum(counts.values())
    return [(name, n / total) for name, n in counts.most_common()] if total else []


def main() -> None:
    parser = argparse.ArgumentParser(
        description="A py-spy raw profile's own time by package: where a request's time is spent."
    )
    parser.add_argument("samples", type=Path, help="py-spy record --format raw output")
    parser.add_argument(
        "--under",
        default="Meter.__call__",
        help="only samples whose stack has this (default: the app's call in journey_profile.py)",
    )
    args = parser.parse_args()
    for name, share in owners(args.samples, args.under):
        print(f"  {share:6.1%}  {name}")


if __name__ == "__main__":
    main()
