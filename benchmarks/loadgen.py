"""A small HTTP/1.1 load generator on asyncio streams, and a process-tree memory sampler.

The client is deliberately thin (prebuilt request bytes, keep-alive connections, no parsing
beyond the status line and Content-Length) so the load generator, which shares the machine's
cores with the server, costs as little as possible.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post_bytes(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A complete HTTP/1.1 POST request, ready to write to a socket."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class LoadResult:
    wall_seconds: float
    cpu_seconds: float = 0.0  # the generator's own, user + system: it shares the cores
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    bodies: Counter[bytes] = field(default_factory=Counter)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0

    @property
    def p99_ms(self) -> float:
        return self.percentile(0.99) * 1000

    def rate(self, status: int) -> float:
        return self.statuses[status] / self.wall_seconds if self.wall_seconds else 0.0


async def _client(port: int, requests: Iterable[bytes], result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for raw in requests:  # one shared iterator: each request is sent once, by one client
            start = time.perf_counter()
            writer.write(raw)
            status_line = await reader.readline()
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            body = await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - start)
            result.statuses[int(status_line.split()[1])] += 1
            result.bodies[body[:40]] += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def run_load(port: int, requests: Sequence[bytes], concurrency: int) -> LoadResult:
    """Send ``requests`` over ``concurrency`` keep-alive connections; latency per request."""
    result = LoadResult(wall_seconds=0.0)
    shared = iter(requests)

    async def main() -> None:
        await asyncio.gather(*(_client(port, shared, result) for _ in range(concurrency)))

    start, cpu = time.perf_counter(), time.process_time()
    asyncio.run(main())
    result.wall_seconds = time.perf_counter() - start
    result.cpu_seconds = time.process_time() - cpu
    return result


class ServerUsage:
    """Peak resident memory and CPU seconds of a process and its children while in use.

    CPU seconds say what the work costs whatever else the machine is doing; wall-clock rates
    on a shared machine also depend on its other users.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak_bytes = 0
        self.cpu_seconds = 0.0
        self._cpu_start = 0.0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _cpu(self) -> float:
        total = 0.0
        for process in [self._process, *self._process.children(recursive=True)]:
            times = process.cpu_times()
            total += times.user + times.system
        return total

    def _sample(self) -> None:
        # Listing the children walks all of /proc (some 3 ms of CPU taken from the cores the
        # server runs on): the workers are listed once a second, their memory read each time.
        tree: list[psutil.Process] = []
        samples = 0
        while not self._stop.is_set():
            try:
                if samples % 10 == 0:
                    tree = [self._process, *self._process.children(recursive=True)]
                total = sum(p.memory_info().rss for p in tree if p.is_running())
            except psutil.Error:
                total = 0
            samples += 1
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self._interval)

    def __enter__(self) -> ServerUsage:
        self._cpu_start = self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.cpu_seconds = self._cpu() - self._cpu_start
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / 2**20


class Server:
    """A server subprocess in its own process group, stopped with all its workers."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, env=env, stdout=out, stderr=out, start_new_session=True
            )

    def wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
