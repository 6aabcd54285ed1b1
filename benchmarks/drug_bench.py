"""Classification time per medication name with the packaged table padded to N rows.

The packaged table is copied and padded with made-up names (a third of them in a
blocking class, so the near-miss index grows too) to ``--rows`` rows; then a mix of
names is classified: known names with doses, combinations, near misses, unknown
words, mixed scripts and 200 combining marks. Prints per-name times.

    uv run python benchmarks/drug_bench.py --rows 1000 10000
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import tempfile
import time
from importlib import resources
from pathlib import Path

from workflow.drugs import classify_name, load_table

SAMPLES = [
    "Xanax 0.5 mg tablet",
    "oxycodone/acetaminophen 5-325 mg",
    "sertraline + clobazam",
    "alprazolam and oxycodone",
    "alprazolm",
    "Klonipin 1mg",
    "X\u0430nax",
    "zol\u200bpidem ER 12.5 mg",
    "lisinopril 10 mg daily",
    "Frobnitol 20 mg twice daily",
    "\u0301" * 200,
    "St. John's Wort 300 mg",
    "metformin ER 500 mg, atorvastatin 40 mg, sertraline 100 mg",
]


def padded_table(rows: int, directory: Path) -> Path:
    data = resources.files("workflow") / "data"
    names = (data / "drug_names.csv").read_text()
    (directory / "interactions.csv").write_text((data / "interactions.csv").read_text())
    have = sum(1 for line in names.splitlines() if line and not line.startswith("#")) - 1
    rng = random.Random(11)
    extra = []
    for i in range(max(0, rows - have)):
        name = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(6, 12))) + f"x{i}"
        drug_class = "opioid" if i % 3 == 0 else "no_known_interaction"
        extra.append(f"{name},{drug_class},,program_policy,benchmark filler row\n")
    (directory / "drug_names.csv").write_text(names + "".join(extra))
    return directory


def run(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        table = load_table(str(padded_table(rows, Path(tmp))))
        names = SAMPLES + [row.name.title() + " 10 mg" for row in list(table.names.values())[:300]]
        times = []
        for _ in range(repeat):
            for name in names:
                start = time.perf_counter_ns()
                classify_name(name, table)
                times.append(time.perf_counter_ns() - start)
        times.sort()
        print(
            f"{len(table.names):>6} rows: {len(times)} classifications, "
            f"median {statistics.median(times) / 1000:.1f} us, "
            f"p99 {times[int(len(times) * 0.99)] / 1000:.1f} us, "
            f"max {times[-1] / 1000:.1f} us per name"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for rows in args.rows:
        run(rows, args.repeat)


if __name__ == "__main__":
    main()
