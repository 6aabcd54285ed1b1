"""The instructions a whole journey costs, counted by valgrind: a figure the machine's noise
does not move.

The journey of ``journey_bench.py`` runs in process, one request at a time
(as in ``journey_profile.py``: ``httpx.ASGITransport``, the thread pool
inlined, a migrated temp SQLite file), under ``valgrind --tool=cachegrind``,
twice: 2 journeys, then 2 + N. The difference over N is one journey's
instructions, the start-up left out. ``--at REV`` counts a git revision's
code the same way, side by side, driven by this checkout's journey (a revision
from this contract's round or later: the helpers import its packages).
``PYTHONHASHSEED`` is fixed; what remains moves by about half a percent.

The CPU a request costs on these shared machines moves by 10-30% from one
minute to the next, so a change of a few percent shows here first, and the
journey's throughput (``journey_bench.py``) then says what it is worth.
Needs valgrind (Debian's package); each count takes a minute or two.

    uv run python benchmarks/journey_instructions.py --journeys 4 --at d02cba3
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WARMUP = 2


def drive(journeys: int) -> None:
    """Run ``WARMUP`` journeys, then ``journeys`` more, in this process (valgrind counts it)."""
    from journey_bench import DEMO

    os.environ.update(DEMO)  # before anything reads the settings
    import asyncio

    from cpu_profile import start_quietly, threads_inlined
    from harness import temp_dir
    from journey_profile import drive as run_journeys
    from journey_profile import migrated_staff

    from api.main import create_app
    from models.db import make_engine

    devnull = start_quietly()
    with temp_dir("carepath-instructions-") as tmp:
        engine = make_engine(f"sqlite:///{tmp / 'journey.db'}")
        staff = migrated_staff(engine)

        async def main() -> None:
            app = create_app(engine)
            with threads_inlined():
                await run_journeys(app, staff, WARMUP, None)
                await run_journeys(app, staff, journeys, None)

        asyncio.run(main())
        engine.dispose()
    devnull.close()


def count(source: Path, journeys: int) -> int:
    """Instructions of a run of ``WARMUP`` + ``journeys`` journeys of ``source``'s code."""
    env = {**os.environ, "PYTHONPATH": str(source), "PYTHONHASHSEED": "0"}
    argv = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        str(Path(__file__).resolve()),
        "--drive",
        str(journeys),
    ]
    done = subprocess.run(argv, env=env, cwd=source, capture_output=True, text=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind on {source} failed:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=4)
    parser.add_argument("--at", action="append", default=[], metavar="REV")
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive is not None:
        drive(args.drive)
        return
    if shutil.which("valgrind") is None:
        parser.error("needs valgrind (apt-get install valgrind)")
    from harness import markdown_table, print_machine, temp_dir
    from http_bench import source_at

    print_machine()
    with temp_dir("carepath-instructions-at-") as tmp:
        targets = [("carepath", ROOT)]
        targets += [
            (f"carepath @{rev}", source_at(tmp / f"at{n}", rev))
            for n, rev in enumerate(args.at, start=1)
        ]
        rows, first = [], None
        for name, source in targets:
            per_journey = (count(source, args.journeys) - count(source, 0)) / args.journeys
            first = first or per_journey
            print(f"{name}: {per_journey / 1e6:.1f} M instructions a journey", flush=True)
            rows.append([name, f"{per_journey / 1e6:.1f}", f"{per_journey / first:.3f}"])
    print(markdown_table(["code", "M instructions a journey", "x first"], rows))


if __name__ == "__main__":
    main()
