"""What every benchmark shares: the machine it ran on, temp dirs, servers run as children.

Servers are started in their own session (process group), so a Ctrl-C in the
terminal reaches only the benchmark, whose ``finally`` blocks then stop the
group it started, and nothing else. SIGTERM is turned into the same
KeyboardInterrupt so that it cleans up too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def on_sigterm_raise_interrupt() -> None:
    """Make SIGTERM clean up like Ctrl-C does."""

    def _raise(_signum, _frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


def machine_info() -> dict[str, str]:
    """nproc, the CPU model, the Python version, the date and the load when measured."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": " ".join(f"{load:.2f}" for load in os.getloadavg()),
    }


def print_machine() -> None:
    info = machine_info()
    print(
        f"machine: nproc={info['nproc']} cpu={info['cpu']!r} python={info['python']} "
        f"date={info['date']} loadavg={info['loadavg']}"
    )


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temp dir removed on the way out, Ctrl-C included."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """The process's memory figures from /proc/<pid>/status, in KiB (VmRSS, VmHWM)."""
    figures = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0])
    return figures


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces: fields are counted after its ")".
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found.extend(int(c) for c in children.read().split())
    return found


def python_descendant(pid: int) -> int:
    """The deepest python process under ``pid`` (``uv run`` starts the server as a child)."""
    best, frontier = pid, [pid]
    while frontier:
        nxt = []
        for parent in frontier:
            for child in _children(parent):
                with contextlib.suppress(OSError), open(f"/proc/{child}/cmdline", "rb") as cmd:
                    if b"python" in cmd.read().split(b"\0")[0]:
                        best = child
                nxt.append(child)
        frontier = nxt
    return best


class Server:
    """A server run as a child process group, ready once ``health_path`` answers 200.

    ``{port}`` in ``argv`` becomes a free port.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
        health_path: str = "/health",
        cwd: Path = ROOT,
    ) -> None:
        self.name, self.port = name, free_port()
        self.argv = [arg.replace("{port}", str(self.port)) for arg in argv]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.health_path = health_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        """The server process itself (the uvicorn worker), not the ``uv`` launcher."""

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + self.health_path, timeout=2).status_code == 200:
                    self.pid = python_descendant(self.proc.pid)
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        """SIGINT the group this server leads, then SIGKILL it if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, 10), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
                return

    def memory(self) -> dict[str, int]:
        return proc_status(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def pinned(argv: list[str], cpu: int | None) -> list[str]:
    """``argv`` run on one CPU (``taskset``) when ``cpu`` is given: every server alike, as
    ``carepath serve`` keeps itself on one CPU (``api.cpu``)."""
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def uv_run(*args: str) -> list[str]:
    """Run a command in the project's environment without syncing it first."""
    return ["uv", "run", "--no-sync", *args]


def run_checked(argv: list[str], env: dict[str, str] | None = None) -> str:
    """Run a short command in the project and return its stdout (raise with its output)."""
    done = subprocess.run(
        argv, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


if __name__ == "__main__":
    print_machine()
    sys.exit(0)
