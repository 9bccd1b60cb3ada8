"""Object-store servers on 127.0.0.1 for the tests, one per test module: moto's standalone S3
server, and Azurite (Azure Storage's emulator, installed by scripts/test.sh from
tests/azurite/package-lock.json). Each gives delta-rs storage options that reach it, new buckets
or containers, and an upload of a local table.

Both are test dependencies: under CI=true a server that cannot start is a failure, never a skip."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import obstore
import pytest
from conftest import IN_CI, REPO
from obstore.store import from_url

from delta2sql.log_store import split_storage_options

AZURITE = REPO / "tests" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (documented by Microsoft; no secret)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start ({url})") from None
            time.sleep(0.2)


class ObjectStoreServer:
    """What the tests need of a server: where tables go, and the options that reach them."""

    name: str
    secret_key: str  # the option that holds the secret the leak test looks for

    endpoint: str  # where the server answers (for Azurite: with the account's path)
    base: str  # scheme://host:port of the server, for a FaultProxy in front of it

    def options(self, secret: str | None = None, via: str | None = None) -> dict[str, str]:
        """Options that reach the server, or `via` a FaultProxy at that base URL."""
        raise NotImplementedError

    def location(self, container: str) -> str:
        """The tables' URI prefix in bucket or container `container`."""
        raise NotImplementedError

    def new_location(self) -> str:
        """A URI prefix in a new bucket or container: each test writes its own."""
        raise NotImplementedError

    def store(self, uri: str):
        config, client = split_storage_options(self.options())
        return from_url(uri, config=config, client_options=client)

    def upload(self, local_table: Path, uri: str) -> str:
        """Put every file under `local_table` at `uri`, by its relative path; returns `uri`."""
        store = self.store(uri)
        for path in sorted(local_table.rglob("*")):
            if path.is_file():
                obstore.put(store, path.relative_to(local_table).as_posix(), path.read_bytes())
        return uri


class S3Server(ObjectStoreServer):
    name = "s3"
    secret_key = "AWS_SECRET_ACCESS_KEY"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = self.base = endpoint

    def options(self, secret: str | None = None, via: str | None = None) -> dict[str, str]:
        """moto accepts any key pair."""
        return {"AWS_ENDPOINT_URL": via or self.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": secret or "test-secret"}

    def location(self, container: str) -> str:
        return f"s3://{container}/tables"

    def new_location(self) -> str:
        bucket = f"lake-{uuid.uuid4().hex[:10]}"
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/{bucket}", method="PUT"), timeout=10).close()
        return self.location(bucket)


class AzuriteServer(ObjectStoreServer):
    name = "azure"
    secret_key = "AZURE_STORAGE_ACCOUNT_KEY"

    def __init__(self, base: str) -> None:
        self.base = base
        self.endpoint = f"{base}/{AZURITE_ACCOUNT}"

    def options(self, secret: str | None = None, via: str | None = None) -> dict[str, str]:
        """Azurite checks the account key: `secret` replaces it only to be refused."""
        return {"AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT, "AZURE_STORAGE_ACCOUNT_KEY": secret or AZURITE_KEY,
                "AZURE_STORAGE_ENDPOINT": f"{via}/{AZURITE_ACCOUNT}" if via else self.endpoint,
                "AZURE_ALLOW_HTTP": "true"}

    def new_location(self) -> str:
        from azure.storage.blob import BlobServiceClient

        container = f"lake-{uuid.uuid4().hex[:10]}"
        connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                      f"BlobEndpoint={self.endpoint};")
        BlobServiceClient.from_connection_string(connection).create_container(container)
        return self.location(container)

    def location(self, container: str) -> str:
        return f"abfss://{container}@{AZURITE_ACCOUNT}.dfs.core.windows.net/tables"


@contextmanager
def _running(command: list[str], url: str, what: str):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(url, process, what)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def s3_server():
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with _running([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                  f"{endpoint}/moto-api/", "moto's S3 server"):
        yield S3Server(endpoint)


@contextmanager
def azurite_server():
    if not AZURITE.exists():
        if IN_CI:
            pytest.fail(f"Azurite is required when CI=true, but {AZURITE} is missing (scripts/test.sh installs it)")
        pytest.skip("Azurite is not installed (scripts/test.sh installs it with npm)")
    port = _free_port()
    with _running([str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
                   "--disableTelemetry", "--silent", "--skipApiVersionCheck", "--loose"],
                  f"http://127.0.0.1:{port}/", "Azurite"):
        yield AzuriteServer(f"http://127.0.0.1:{port}")


SERVERS = {"s3": s3_server, "azure": azurite_server}


class FaultProxy:
    """An HTTP proxy in front of a server that can delay requests, answer some with an error
    status, or drop the connection without an answer: throttling bursts, resets and a permanent
    denial in the middle of a migration, on this machine only.

    `fault(number, method, path)` decides per request (numbered from 1): None forwards it,
    an int answers with that HTTP status, "drop" closes the connection unanswered.
    `drop_headers` (lower case) are not passed on: a server that ignores a condition."""

    def __init__(self, upstream: str, fault=None, delay_seconds: float = 0.0, drop_headers: tuple[str, ...] = ()) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.fault = fault or (lambda number, method, path: None)
        self.requests: list[tuple[str, str, object]] = []  # (method, path, what happened)
        self.authorizations: list[str] = []  # each request's Authorization header
        self.bytes_sent = 0  # response bodies passed back
        lock = threading.Lock()
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    number = len(proxy.requests) + 1
                    outcome = proxy.fault(number, self.command, self.path)
                    proxy.requests.append((self.command, self.path, outcome))
                    proxy.authorizations.append(self.headers.get("Authorization", ""))
                if delay_seconds:
                    time.sleep(delay_seconds)
                if outcome == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(outcome, int):
                    text = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
                            b"<Message>injected by the test proxy</Message></Error>")
                    self.send_response(outcome)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                upstream_connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in drop_headers}
                    upstream_connection.request(self.command, self.path, body=body or None, headers=headers)
                    response = upstream_connection.getresponse()
                    data = response.read()
                finally:
                    upstream_connection.close()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                    with lock:
                        proxy.bytes_sent += len(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def counts(self) -> dict[str, int]:
        """Requests by kind (LIST, GET, HEAD, PUT) and the injected faults."""
        kinds: dict[str, int] = {}
        for method, path, outcome in self.requests:
            kind = "fault" if outcome is not None else ("LIST" if method == "GET" and "list-type=" in path
                                                         or "comp=list" in path else method)
            kinds[kind] = kinds.get(kind, 0) + 1
        return kinds
