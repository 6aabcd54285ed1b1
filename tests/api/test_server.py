"""The real server, started the README's way, answering and stopping on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited early:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling for readiness, not waiting for time to pass
    pytest.fail(f"no /health within {STARTUP_TIMEOUT}s:\n{log.read_text()[-3000:]}")


def serving_process(pid: int) -> int:
    """The Python process serving under ``uv run`` (pid): uv's child, or uv itself."""
    tasks = Path(f"/proc/{pid}/task")
    children = [c for t in tasks.iterdir() for c in (t / "children").read_text().split()]
    return int(children[0]) if children else pid


def assert_kept_on_one_cpu(pid: int, log: Path) -> None:
    """Every thread of the server runs on the CPU its start-up line names (``api.cpu``)."""
    said = [json.loads(line) for line in log.read_text().splitlines() if '"cpu"' in line]
    assert len(said) == 1, log.read_text()[-3000:]
    if len(os.sched_getaffinity(0)) < 2:  # one CPU already: nothing to keep it to
        assert said[0]["cpu"] is None
        return
    kept_on = said[0]["cpu"]
    assert kept_on in os.sched_getaffinity(0)
    server = serving_process(pid)
    threads = [int(task) for task in os.listdir(f"/proc/{server}/task")]
    assert len(threads) > 1  # the event loop's, and the thread pool's
    assert {frozenset(os.sched_getaffinity(t)) for t in threads} == {frozenset({kept_on})}


@pytest.mark.slow
def test_carepath_serve_starts_answers_and_stops_on_sigterm(tmp_path):
    uv = shutil.which("uv")
    assert uv, "the README's way needs uv on PATH"
    port, token = free_port(), "test-admin-token-0123456789abcdef"
    env = {
        **os.environ,
        "CAREPATH_DATABASE_URL": f"sqlite:///{tmp_path / 'carepath.db'}",
        "CAREPATH_ADMIN_TOKEN": token,
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [uv, "run", "carepath", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # uv and the server it starts: one group to end
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_health(base, server, log)
        users = httpx.get(f"{base}/api/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert users.status_code == 200 and users.json()["items"][0]["name"] == "admin"
        assert_kept_on_one_cpu(server.pid, log)  # the request above ran in a worker thread
        assert httpx.get(f"{base}/api/v1/users").status_code == 401
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        if server.poll() is None:
            # A failed assertion: kill uv's whole group, or its server would outlive the test.
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert "Application shutdown complete" in log.read_text()
