"""An asyncio httpx load driver: a fixed pool of keep-alive connections, bounded in time and count.

A scenario is a function of the worker's index that returns a generator of
``Request``s; the driver sends each one and passes the response's status back
in (``status = yield request``), so a scenario can follow the state it
causes, e.g. alternate hold and resume on the cases that worker owns. Each of
the ``connections`` workers sends one request at a time, so there are never
more requests in flight than connections.

Only requests started after the warm-up are counted. The run stops at the
deadline or after ``max_requests`` counted requests, whichever comes first,
and every request has a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from harness import cpu_seconds, percentile


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    json: Any = None
    headers: dict[str, str] | None = None


class Status(int):
    """A response's status code, with the response itself for a scenario that reads its body."""

    response: httpx.Response | None = None


Scenario = Callable[[int], Generator[Request, int, None]]
"""Given a worker's index, a generator of requests; each ``yield`` receives the last status
(a ``Status``: ``status.response.json()`` reads the body)."""


@dataclass
class LoadResult:
    """What one run measured: counted requests, their latencies and statuses."""

    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    client_cpu: float = 0.0
    """Share of one core the driver itself used: near 1.0 means the client was the limit."""
    server_cpu: float = 0.0
    """Share of one core the server used (when its pid was given)."""

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_ms_per_request(self) -> float:
        """Server CPU per request: the cost, whatever share of a core the server could get."""
        return 1000 * self.server_cpu / self.rps if self.rps else float("nan")

    def p(self, fraction: float) -> float:
        """A latency percentile, in milliseconds."""
        return percentile(sorted(self.latencies), fraction) * 1000

    def summary(self) -> str:
        return (
            f"{self.name}: {self.requests} requests in {self.seconds:.1f} s = {self.rps:.0f}/s, "
            f"p50 {self.p(0.5):.1f} ms, p99 {self.p(0.99):.1f} ms, errors {self.errors} "
            f"{dict(self.statuses)}, cpu: client {self.client_cpu:.0%} "
            f"server {self.server_cpu:.0%} = {self.server_ms_per_request:.1f} ms/request"
        )


async def drive(
    base_url: str | Sequence[str],
    scenario: Scenario,
    *,
    name: str = "load",
    connections: int = 16,
    seconds: float = 10.0,
    warmup: float = 2.0,
    max_requests: int | None = None,
    timeout: float = 30.0,
    server_pid: int | Sequence[int] | None = None,
    stagger: float = 0.0,
) -> LoadResult:
    """Run ``scenario`` on ``connections`` keep-alive connections and measure it.

    Several ``base_url``s are several processes of one server: the connections are
    dealt among them in turn, as a load balancer would, and ``server_pid`` lists them
    all (their CPU is summed). ``stagger``: worker ``i`` starts ``i / connections`` of
    that many seconds late, so that workers running the same long scenario are not in
    step (in step, they finish their rounds together, and a count of rounds moves in
    steps of ``connections``)."""
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    result = LoadResult(name)
    # One single-connection client per worker, not one client with a pool of
    # ``connections``: httpcore's pool checks every connection of the pool on
    # every request, which halved the driver's throughput (profiled).
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=urls[n % len(urls)], limits=one, timeout=timeout)
        for n in range(connections)
    ]
    counted = 0
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds
    last_done = measure_from
    cpu_from: tuple[float, float] | None = None

    async def worker(index: int) -> None:
        nonlocal counted, last_done, cpu_from
        client = clients[index]
        if stagger:
            await asyncio.sleep(stagger * index / connections)
        requests = scenario(index)
        request = next(requests)
        while True:
            began = time.perf_counter()
            if began >= stop_at or (max_requests is not None and counted >= max_requests):
                return
            counts = began >= measure_from
            if counts:
                counted += 1
                if cpu_from is None:
                    cpu_from = (time.process_time(), _server_cpu(server_pid))
            try:
                response = await client.request(
                    request.method, request.path, json=request.json, headers=request.headers
                )
                status = Status(response.status_code)
                status.response = response
            except httpx.HTTPError:
                status = Status(0)
            done = time.perf_counter()
            if counts:
                result.latencies.append(done - began)
                result.statuses[int(status)] += 1
                last_done = max(last_done, done)
            try:
                request = requests.send(status)
            except StopIteration:
                return

    try:
        hard_limit = warmup + seconds + timeout + 10
        await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(connections))), hard_limit)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    result.seconds = last_done - measure_from
    if cpu_from is not None and result.seconds > 0:
        result.client_cpu = (time.process_time() - cpu_from[0]) / result.seconds
        result.server_cpu = (_server_cpu(server_pid) - cpu_from[1]) / result.seconds
    return result


def _server_cpu(pid: int | Sequence[int] | None) -> float:
    pids = [pid] if isinstance(pid, int) else list(pid or ())
    return sum(cpu_seconds(p) for p in pids if p)


def run(base_url: str | Sequence[str], scenario: Scenario, **kwargs: Any) -> LoadResult:
    """``drive`` from synchronous code."""
    return asyncio.run(drive(base_url, scenario, **kwargs))


def get_path(path: str, headers: dict[str, str] | None = None) -> Scenario:
    """The simplest scenario: GET one path over and over."""

    def scenario(_index: int) -> Generator[Request, int, None]:
        while True:
            yield Request("GET", path, headers=headers)

    return scenario


def main() -> None:
    parser = argparse.ArgumentParser(description="GET one URL under load, e.g. /health.")
    parser.add_argument("url", help="e.g. http://127.0.0.1:8000/health")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--max-requests", type=int, default=None)
    args = parser.parse_args()
    parsed = httpx.URL(args.url)
    if parsed.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("load only 127.0.0.1")
    base = str(parsed.copy_with(path="/", query=None)).rstrip("/")
    result = run(
        base,
        get_path(parsed.raw_path.decode()),
        name=args.url,
        connections=args.connections,
        seconds=args.seconds,
        warmup=args.warmup,
        max_requests=args.max_requests,
    )
    print(result.summary())


if __name__ == "__main__":
    main()
