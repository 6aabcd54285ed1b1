"""Keeping the serving process on one CPU (``CAREPATH_SERVE_CPU``, ``carepath serve --cpu``).

A carepath process runs Python on one CPU at a time (the GIL), and every
request hands it from the event loop to a worker thread of the pool and
back. When those threads sit on different CPUs, each hand-over wakes a
thread on the other CPU and moves the request's working set between the
two CPUs' caches. Measured on a 2-CPU machine (``benchmarks/README.md``,
2026-11-30), a whole course of care cost 6.8 ms of server CPU a request
with the process held on one CPU and 8.5-9.0 ms without, and served 35%
more journeys a second. So ``carepath serve`` keeps itself on one CPU:

- ``auto`` (the default): the CPU it is running on when it starts, if it
  may run on more than one (several processes started on one host land on
  different CPUs as the kernel places them; give each its own number to be
  sure);
- a number: that CPU, which must be one the process may run on;
- ``off``: wherever the kernel likes.

Linux only (``os.sched_setaffinity``); elsewhere every choice is ``off``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

AUTO, OFF = "auto", "off"


def parse(value: str) -> str | int:
    """``auto``, ``off`` or a CPU number, from a setting or ``--cpu``; ValueError otherwise."""
    text = value.strip().lower()
    if text in (AUTO, OFF):
        return text
    if text.isdigit():
        return int(text)
    raise ValueError(f"must be auto, off or a CPU number, not {value[:20]!r}")


def choose(choice: str | int, allowed: set[int], current: int | None) -> int | None:
    """The CPU to keep the process on, or None to leave it where it may run.

    ``allowed``: the CPUs it may run on now; ``current``: the one it runs on.
    A number it may not run on is a ValueError.
    """
    if choice == OFF:
        return None
    if isinstance(choice, int):
        if choice not in allowed:
            cpus = ", ".join(str(cpu) for cpu in sorted(allowed))
            raise ValueError(f"CPU {choice} is not one this process may run on ({cpus})")
        return choice
    if len(allowed) < 2:
        return None  # already on one CPU
    return current if current in allowed else min(allowed)


def running_on() -> int | None:
    """The CPU this process runs on now (field 39 of ``/proc/self/stat``), if Linux says."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path("/proc/self/stat").read_text()
        # The fields after the command name, which is in parentheses and may hold spaces.
        return int(stat.rsplit(")", 1)[1].split()[36])
    return None


def keep_on_one(choice: str | int) -> int | None:
    """Keep this process, every thread it has and will have, on the chosen CPU.

    Returns the CPU, or None when it stays where it may run (``off``, one CPU
    already, or not Linux). Call it before the server starts its threads:
    a new thread runs where the thread that starts it may.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = choose(choice, os.sched_getaffinity(0), running_on())
    if cpu is None:
        return None
    try:
        os.sched_setaffinity(0, {cpu})  # this thread, and every thread it starts from now
    except OSError:
        return None  # not allowed here (a container's policy): left where it may run
    for task in _other_threads():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(task, {cpu})
    return cpu


def _other_threads() -> list[int]:
    """The ids of this process's threads already running, but for this one."""
    try:
        tasks = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return []
    return [task for task in tasks if task != threading.get_native_id()]
