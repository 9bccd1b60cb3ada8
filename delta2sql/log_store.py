"""Where a table's `_delta_log` lives, and how its files are listed, read and written back.

A table is a local directory (a plain path or `file://`) or a prefix in an object store
(`s3://`, `s3a://`, `az://`, `abfs[s]://`, `adl://`, `gs://`). Both give the same small API, so
the listing rules (`log_listing.py`), the landing and the validation do not care which:

- `list()` returns the log's objects (name, size, last-modified, ETag) in name order, starting
  after an offset where the store can (S3 start-after, Azure and GCS marker listing): a table
  with a million commits and a checkpoint near its end is listed from the checkpoint on;
- `fetch(files)` brings the objects near, many at a time and each at most once per `session()`.
  For a local table the files are already there. From an object store, commits and the other
  small files are held in memory (within `HELD_BYTES`) until the landing `take()`s them, and
  checkpoints (and any file past the budget) are streamed to a private spool directory in 1 MiB
  chunks, so memory does not grow with a checkpoint's size. `read_bytes` and `digest` read
  either; `local_path` is where DuckDB and pyarrow open a checkpoint; `open_parquet` opens one
  for its footer and a few columns, in place by ranged GETs when it was not fetched (`assess`);
- `put_if_absent()` writes a commit only if its name is free, which the store itself enforces
  (S3 and Azure `If-None-Match: *`, GCS `ifGenerationMatch=0`).

Object stores are reached with obstore, the Python binding of the Rust `object_store` crate that
delta-rs itself uses (ADR 0006): it reads credentials where each cloud's tools look, retries
throttling and transient errors with backoff, and takes delta-rs's `storage_options` keys, so the
reference reader gets exactly the same configuration. Secrets stay in memory: only the URI is
recorded or shown.
"""

from __future__ import annotations

import atexit
import io
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from delta2sql.errors import Delta2SqlError, DeltaLogError, ObjectGoneError
from delta2sql.file_digest import FileDigest, digest_bytes, digest_file
from delta2sql.object_downloads import Downloads

OBJECT_STORE_SCHEMES = {"s3": "s3", "s3a": "s3", "az": "azure", "azure": "azure", "abfs": "azure", "abfss": "azure",
                        "adl": "azure", "gs": "gcs"}
# objects fetched at once (--io-concurrency): at 20 ms a round trip, 64 in flight bring a batch of
# 1,000 commits in about the time DuckDB takes to land one (README "Tables in an object store")
DEFAULT_IO_CONCURRENCY = 64
# commit bytes an object store's log holds in memory (the batch being landed and the ones fetched
# ahead): past it, downloads go to the spool. Writing each commit to a file cost more CPU than
# fetching it (object_downloads.py); held bytes add to peak RSS (the wide table's 1,000 commits,
# 29 MB, fetched while its checkpoint lands: +43 MB with 128 MiB, +31 MB with 16 MiB, +20 MB with
# none, against local disk). Concurrent downloads may overshoot it by their number × 1 MiB.
HELD_BYTES = 16 << 20
# obstore's HTTP client options (delta-rs takes them in the same flat map, with or without the
# cloud's prefix); every other key is the store's own configuration
_CLIENT_KEYS = {
    "allow_http", "allow_invalid_certificates", "connect_timeout", "default_content_type", "http1_only",
    "http2_keep_alive_interval", "http2_keep_alive_timeout", "http2_keep_alive_while_idle", "http2_only",
    "pool_idle_timeout", "pool_max_idle_per_host", "proxy_url", "proxy_ca_certificate", "proxy_excludes",
    "randomize_addresses", "read_timeout", "timeout", "user_agent",
}
_BOOLEAN_CLIENT_KEYS = {"allow_http", "allow_invalid_certificates", "http1_only", "http2_only", "randomize_addresses"}
_CLOUD_PREFIXES = ("aws_", "azure_", "google_")
# delta-rs keys that coordinate its own commits (locking, unsafe renames): they concern writers
# through delta-rs, which delta2sql never is, so obstore is not given them; delta-rs still is.
_DELTA_RS_WRITER_KEYS = ("aws_s3_locking_provider", "delta_dynamo_table_name", "aws_s3_allow_unsafe_rename",
                         "dynamo_lock_")


class StorageError(Delta2SqlError):
    """An object store refused or failed a request: the message names the URI and what to set."""


@dataclass(frozen=True, slots=True)
class LogObject:
    """One object of a `_delta_log` listing; `name` is relative to `_delta_log`."""

    name: str
    size_bytes: int
    modification_time_ms: int
    etag: str | None = None


class ObjectPath(str):
    """A URI that joins like a `Path` in messages: `ObjectPath("s3://b/t/_delta_log") / "0.json"`."""

    def __truediv__(self, name: str) -> ObjectPath:
        return ObjectPath(f"{self.rstrip('/')}/{name}")

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.rstrip("/").rsplit("/", 1)[0])


def is_object_store_uri(text: str) -> bool:
    return urlsplit(str(text)).scheme.lower() in OBJECT_STORE_SCHEMES


def table_uri(location: str | os.PathLike) -> str:
    """The table's location as the catalog records it: an absolute local path, or the URI
    without a trailing slash. A URI that carries credentials (user info or a query string such as
    an Azure SAS token) is refused: they would end up in the catalog."""
    text = str(location)
    if not is_object_store_uri(text):
        if text.startswith("file://"):
            text = unquote(urlsplit(text).path)
        return str(Path(text).resolve())
    parts = urlsplit(text)
    container_at_account = parts.scheme.lower() in ("abfs", "abfss") and not parts.password  # abfss://container@account
    if (parts.username and not container_at_account) or parts.password or parts.query:
        container = f"{parts.username}@" if container_at_account and parts.username else ""
        raise StorageError(f"{parts.scheme}://{container}{parts.hostname}{parts.path}: the URI carries credentials; give them "
                           "with --storage-option KEY=VALUE or the environment instead, so they are never recorded")
    if not parts.netloc:
        raise StorageError(f"{text}: no bucket or container in the URI")
    return text.rstrip("/")


def for_cloud(options: dict[str, str], uri: str) -> dict[str, str]:
    """The options that concern the cloud of `uri`: another cloud's keys (`azure_*` for an S3
    table, say, from a fleet's shared --storage-option) are left out."""
    cloud = OBJECT_STORE_SCHEMES.get(urlsplit(uri).scheme.lower())
    foreign = tuple(prefix for prefix, name in zip(_CLOUD_PREFIXES, ("s3", "azure", "gcs")) if name != cloud)
    return {k: v for k, v in options.items() if not k.lower().startswith(foreign)}


def split_storage_options(options: dict[str, str]) -> tuple[dict[str, str], dict[str, object]]:
    """delta-rs's flat `storage_options` as obstore's (store config, client options)."""
    config, client = {}, {}
    for key, value in options.items():
        bare = key.lower()
        if bare.startswith(_DELTA_RS_WRITER_KEYS) or bare == "aws_profile":
            continue  # aws_profile: read by _aws_profile_credentials
        for prefix in _CLOUD_PREFIXES:
            if bare.startswith(prefix) and bare[len(prefix):] in _CLIENT_KEYS:
                bare = bare[len(prefix):]
        if bare in _CLIENT_KEYS:
            client[bare] = str(value).lower() in ("1", "true", "yes") if bare in _BOOLEAN_CLIENT_KEYS else value
        else:
            config[key] = value
    return config, client


def _aws_profile_credentials(options: dict[str, str]):
    """AWS credentials from a profile (~/.aws/credentials and config, SSO, `credential_process`),
    which boto3 reads and `object_store` does not: used when a profile is named (AWS_PROFILE, as
    an option or in the environment) or the shared files exist, and no key is given outright."""
    given = {k.lower() for k in options} | {k.lower() for k in os.environ if k.startswith("AWS_")}
    if given & {"aws_access_key_id", "access_key_id"}:
        return None
    profile = next((v for k, v in options.items() if k.lower() == "aws_profile"), os.environ.get("AWS_PROFILE"))
    files = (os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
             os.environ.get("AWS_CONFIG_FILE", "~/.aws/config"))
    if profile is None and not any(Path(f).expanduser().is_file() for f in files):
        return None  # object_store's own chain: web identity, container and instance credentials
    import boto3
    from obstore.auth.boto3 import Boto3CredentialProvider

    try:
        return Boto3CredentialProvider(boto3.Session(profile_name=profile))
    except Exception as exc:  # noqa: BLE001 - boto3's profile errors, named for the user
        raise StorageError(f"AWS profile {profile or 'default'}: {exc}") from None


def _client_settings_from_environment() -> dict[str, str]:
    """HTTP client settings in the environment (e.g. AWS_ALLOW_HTTP=true for a local MinIO):
    obstore reads the store's settings from there itself, but client options given in code
    replace the environment's, so those are carried over explicitly."""
    return {key: value for key, value in os.environ.items()
            if (bare := key.lower()).startswith(_CLOUD_PREFIXES) and bare.split("_", 1)[1] in _CLIENT_KEYS}


class LocalLog:
    """A table on the local file system: its files are read where they are."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.root = Path(uri)
        self.log_dir = self.root / "_delta_log"  # shown in messages
        self.local_dir = self.log_dir  # where DuckDB and pyarrow read the bytes
        self.storage_options: dict[str, str] = {}
        self._log_prefix = os.fspath(self.log_dir) + os.sep

    def list(self, offset: str | None = None, prefix: str = "", suffix: str = "") -> list[LogObject]:
        """Files under `_delta_log/<prefix>` after `offset` whose names end with `suffix`, in name
        order. Only those are stat'ed: the `.crc` files of 100,000 versions are found in 0.05 s,
        where stat'ing every name takes 0.45 s."""
        directory = self.log_dir / prefix if prefix else self.log_dir
        objects = []
        try:
            with os.scandir(directory) as entries:  # one entry at a time: a list of 1,000,000 held 0.9 GB
                for entry in entries:
                    name = prefix + entry.name
                    if (not entry.name.startswith(".") and (offset is None or name > offset)
                            and name.endswith(suffix) and entry.is_file()):
                        st = entry.stat()  # a DirEntry caches its stat
                        objects.append(LogObject(name, st.st_size, st.st_mtime_ns // 1_000_000))
        except FileNotFoundError:
            if prefix:
                return []
            raise DeltaLogError(f"{self.root}: not a Delta table (no _delta_log directory)") from None
        except NotADirectoryError:
            raise DeltaLogError(f"{directory}: _delta_log is not a directory") from None
        return sorted(objects, key=lambda o: o.name)

    def stat(self, name: str) -> LogObject | None:
        """On a plain string path: a catch-up of a 100,000-commit log describes every landed
        commit, 0.3 s this way and 1.4 s through pathlib."""
        try:
            st = os.stat(self._log_prefix + name)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return LogObject(name, st.st_size, st.st_mtime_ns // 1_000_000)

    def describe(self, names: list[str]) -> dict[str, LogObject]:
        """The size and time of each of `names` that exists."""
        return {name: obj for name in names if (obj := self.stat(name)) is not None}

    def sizes(self, names: list[str]) -> dict[str, int]:
        """The size of each of `names` that exists: a catch-up checks every landed commit's, and
        for 100,000 commits one bare `os.stat` each takes 0.26 s, `describe` 0.42 s."""
        found, prefix = {}, self._log_prefix
        for name in names:
            try:
                found[name] = os.stat(prefix + name).st_size
            except (FileNotFoundError, NotADirectoryError):
                pass
        return found

    def prefetch(self, files) -> None:
        """Local files need no copy."""

    def fetch(self, files) -> None:
        """Local files need no copy."""

    def local_path(self, name: str) -> Path:
        return self.log_dir / name

    def open_parquet(self, name: str, size_bytes: int) -> pq.ParquetFile:
        """A Parquet file of the log, where it is (`size_bytes` is for an object store's ranged reads)."""
        return pq.ParquetFile(self.log_dir / name)

    def local_copy(self, name: str) -> Path | None:
        path = self.log_dir / name
        return path if path.is_file() else None

    def read_bytes(self, name: str) -> bytes | None:
        """One plain open: validate reads every landed commit with it."""
        try:
            with open(self._log_prefix + name, "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def take(self, name: str) -> bytes:
        """The bytes of JSON file `name` for the landing, read here with one plain open (DuckDB's
        read_blob of 1,000 small commits took 55-100 ms, this and the Arrow copy 19-36 ms; long x1
        into DuckDB 21.3 s against 22.7 s). Unlike `read_bytes`, a file that is gone or unreadable
        is an error naming it: the listing said it was there."""
        try:
            data = self.read_bytes(name)
        except OSError as exc:  # permissions, an I/O error: named, not an "unexpected" repr without the file
            raise DeltaLogError(f"{self.log_dir / name}: cannot be read: {exc.strerror or exc}") from None
        if data is None:
            raise _gone(self.log_dir / name)
        return data

    def digest(self, name: str) -> FileDigest | None:
        path = self.local_copy(name)
        return None if path is None else digest_file(path)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Write `name` whole or not at all, never replacing a file: a synced temporary file is
        hard-linked into place (link fails if the name exists), so a reader never sees half a
        commit. False when the name exists."""
        path = self.log_dir / name
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with temporary.open("xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                return False
        finally:
            temporary.unlink(missing_ok=True)
        return True

    def require_put_if_absent(self) -> None:
        """A hard link never replaces a file: always enforced here."""

    def set_modification_time(self, name: str, modification_time_ms: int) -> None:
        ns = modification_time_ms * 1_000_000
        os.utime(self.log_dir / name, ns=(ns, ns))


class ObjectStoreLog:
    """A table in an object store: listed and read with obstore; commits held in memory,
    checkpoints read from a local spool, or in place by ranged GETs where only a footer and a
    few columns are wanted (`open_parquet`)."""

    def __init__(self, uri: str, storage_options: dict[str, str], io_concurrency: int = DEFAULT_IO_CONCURRENCY) -> None:
        from obstore.store import from_url  # imported here: local tables never need it

        self.uri = uri
        self.log_dir = ObjectPath(uri) / "_delta_log"
        self.storage_options = for_cloud(storage_options, uri)
        config, client = split_storage_options({**for_cloud(_client_settings_from_environment(), uri),
                                                **self.storage_options})
        try:
            self._profile = (_aws_profile_credentials(self.storage_options) if urlsplit(uri).scheme in ("s3", "s3a")
                             else None)
            self.store = from_url(uri, config=config or None, client_options=client or None,
                                  credential_provider=self._profile)
        except BaseException as exc:  # noqa: BLE001 - obstore raises a PanicException (a BaseException) on some keys
            raise StorageError(f"{uri}: cannot configure the object store: {_first_line(exc)}; check the "
                               "--storage-option keys (the same as delta-rs's storage_options)") from None
        self._spool = Path(tempfile.mkdtemp(prefix="delta2sql-spool-"))
        self.local_dir = self._spool / "_delta_log"
        self.local_dir.mkdir()
        self.io_concurrency = io_concurrency
        self._downloads = Downloads(self.store, io_concurrency)
        # each object once: the downloads under way, the bytes held in memory and the ETag of each
        # spooled copy (only the ETag is kept once a copy is made: 100,000 finished futures held 260 MB)
        self._pending: dict[str, Future] = {}
        # the seconds each checkpoint or sidecar download took, for an estimate's download phase
        self._download_times: dict[str, float] = {}
        self._footers: dict[str, pq.FileMetaData] = {}  # of the Parquet files read in place: read once
        self._held: dict[str, tuple[str | None, bytes]] = {}
        self._held_bytes = 0
        self._copied: dict[str, str | None] = {}
        self._absent: set[str] = set()  # names a GET found missing
        # the widest top-level listing of this command (offset, objects): a later listing from
        # the same or a later name is served from it, so a migrate lists the log once
        self._listed: tuple[str | None, list[LogObject]] | None = None
        self._list_lock = threading.Lock()  # validate lists from two threads: the second waits, then reuses
        self._lock = threading.Lock()

    def close(self) -> None:
        self._downloads.close()
        shutil.rmtree(self._spool, ignore_errors=True)

    def delta_rs_options(self) -> dict[str, str]:
        """The storage options delta-rs reads this table with: the same as the landing's. A
        profile's credentials, which delta-rs cannot resolve itself, are handed over resolved."""
        options = dict(self.storage_options)
        if self._profile is not None:
            credential = self._profile()
            options.update({"AWS_ACCESS_KEY_ID": credential["access_key_id"],
                            "AWS_SECRET_ACCESS_KEY": credential["secret_access_key"]})
            if credential.get("token"):
                options["AWS_SESSION_TOKEN"] = credential["token"]
            if "region" in self._profile.config and not any(k.lower() in ("aws_region", "region") for k in options):
                options["AWS_REGION"] = self._profile.config["region"]
            options = {k: v for k, v in options.items() if k.lower() != "aws_profile"}
        return options

    def list(self, offset: str | None = None, prefix: str = "", suffix: str = "") -> list[LogObject]:
        """Objects under `_delta_log/<prefix>` after `offset` whose names end with `suffix`, in name
        order. The top level stops at `_sidecars/`: sidecars are read by the names a checkpoint
        gives, never listed."""
        with self._list_lock:
            return self._list(offset, prefix, suffix)

    def _list(self, offset: str | None, prefix: str, suffix: str) -> list[LogObject]:
        import obstore

        if not prefix and self._listed is not None and (self._listed[0] is None or (offset or "") >= self._listed[0]):
            return [o for o in self._listed[1]  # this command listed it
                    if (offset is None or o.name > offset) and o.name.endswith(suffix)]
        objects = []
        try:
            stream = obstore.list(self.store, f"_delta_log/{prefix}",
                                  offset=f"_delta_log/{offset}" if offset else None, chunk_size=1000)
            for meta in (meta for chunk in stream for meta in chunk):  # a page is fetched when reached
                name = meta["path"].removeprefix("_delta_log/")
                if offset and name <= offset:
                    continue  # a store (or emulator: Azurite) that did not start at the offset itself
                if not prefix and name.startswith(("_sidecars/", "_staged_commits/")):
                    break  # names sort after every version and _last_checkpoint
                objects.append(_log_object(name, meta))
        except Exception as exc:  # noqa: BLE001 - translated to a message naming the URI
            raise self._error(exc, f"{self.log_dir}/{prefix}") from None
        if not objects and not prefix and offset is None:
            raise DeltaLogError(f"{self.uri}: not a Delta table (no _delta_log objects under this prefix)")
        if not prefix:
            self._listed = (offset, objects)
        return [o for o in objects if o.name.endswith(suffix)]

    def folders(self) -> list[str]:
        """The names of the folders directly under this URI (one delimited listing): how
        `assess --recursive` finds tables below a prefix without listing their files."""
        import obstore

        try:
            listed = obstore.list_with_delimiter(self.store)
        except Exception as exc:  # noqa: BLE001 - translated to a message naming the URI
            raise self._error(exc, self.uri) from None
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in listed["common_prefixes"])

    def stat(self, name: str) -> LogObject | None:
        import obstore

        try:
            return _log_object(name, obstore.head(self.store, f"_delta_log/{name}"))
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, self.log_dir / name) from None

    def round_trip_seconds(self, name: str, requests: int = 3) -> float:
        """The store's latency: the median of `requests` HEADs of `name`, in turn. A GET of a
        commit or a page of a listing costs about one; estimates count them (estimate.py)."""
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            self.stat(name)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    def download_seconds(self, names: list[str]) -> float:
        """How long this process took to download the checkpoint or sidecar files `names`, which
        run `io_concurrency` at a time; 0 for files it did not download. Planning downloads a
        checkpoint to check that it opens, so its estimate counts the real download, of that
        file, from that store, now."""
        with self._lock:
            times = [self._download_times[name] for name in names if name in self._download_times]
        return max(max(times), sum(times) / self.io_concurrency) if times else 0.0

    def _timed(self, name: str, seconds: float) -> None:
        if _read_as_file(name):
            with self._lock:
                self._download_times[name] = seconds

    def describe(self, names: list[str]) -> dict[str, LogObject]:
        """The listed size, time and ETag of each of `names` that exists: the versioned files by
        one listing from the first of them, the others (sidecars, staged commits) one by one."""
        versioned = [n for n in names if "/" not in n and n[:20].isdigit()]
        found = {}
        if versioned:
            wanted = set(versioned)
            found = {o.name: o for o in self.list(offset=min(versioned)[:20]) if o.name in wanted}
        for name in names:
            if name not in found and name not in versioned and (obj := self.stat(name)) is not None:
                found[name] = obj
        return found

    def sizes(self, names: list[str]) -> dict[str, int]:
        """The listed size of each of `names` that exists."""
        return {name: obj.size_bytes for name, obj in self.describe(names).items()}

    def local_path(self, name: str) -> Path:
        return self.local_dir / name

    def open_parquet(self, name: str, size_bytes: int) -> pq.ParquetFile:
        """A Parquet file of the log: its spooled copy once fetched, else read where it is, by
        ranged GETs of what pyarrow asks for: a footer costs a GET or two, not the file."""
        with self._lock:
            fetched = name in self._copied or name in self._pending
        if fetched:  # spooled, or being spooled: `_fetched` waits for the download to end
            path = self._fetched(name)
            if path is None:
                raise _gone(self.log_dir / name)
            return pq.ParquetFile(path)
        # pre_buffer: the column chunks a read needs come in coalesced ranges, not a GET each
        opened = pq.ParquetFile(pa.PythonFile(_RangedObject(self, name, size_bytes), mode="r"),
                                metadata=self._footers.get(name), pre_buffer=True)
        self._footers[name] = opened.metadata
        return opened

    def prefetch(self, files) -> None:
        """Start the downloads of `files` (LogFile or LogObject) in the background: the next
        batch arrives while the current one is landed. Errors surface in `fetch`."""
        for f in files:
            self._copy(f.name, getattr(f, "etag", None))

    def fetch(self, files) -> None:
        """Bring `files` near, `io_concurrency` downloads at a time; an object already held or
        copied (or being fetched) with the same ETag is not read again."""
        for name, download in [(f.name, self._copy(f.name, getattr(f, "etag", None))) for f in files]:
            try:
                if download is not None:
                    self._timed(name, download.result()[2])  # here, where it is waited for: `_settle` may run later
            except FileNotFoundError:
                raise _gone(self.log_dir / name) from None
            except Exception as exc:  # noqa: BLE001 - translated to a message naming the object
                raise self._error(exc, self.log_dir / name) from None

    def take(self, name: str) -> bytes:
        """The bytes of `name` (fetched), no longer held: the landing takes each commit once, and
        it is read again if asked for again."""
        data = self.read_bytes(name)
        if data is None:
            raise _gone(self.log_dir / name)
        with self._lock:
            self._let_go(name)
        return data

    def _let_go(self, name: str) -> None:
        """Forget the bytes held for `name`, if any (with the lock held)."""
        if (held := self._held.pop(name, None)) is not None:
            self._held_bytes -= len(held[1])

    def _copy(self, name: str, etag: str | None) -> Future | None:
        """The download of `name` under way or just started; None when it is held or copied
        already, with the listed `etag` (an object that changed since is read again)."""
        with self._lock:
            if name in self._held and (etag is None or self._held[name][0] == etag):
                return None
            if name in self._copied and (etag is None or self._copied[name] == etag):
                return None
            if name in self._pending:
                return self._pending[name]
            if "/" in name:  # a sidecar or a staged commit
                (self.local_dir / name).parent.mkdir(parents=True, exist_ok=True)
            download = self._pending[name] = self._downloads.start(
                f"_delta_log/{name}", self.local_dir / name, None if _read_as_file(name) else self._may_hold)
        download.add_done_callback(lambda done: self._settle(name, etag, done))
        return download

    def _may_hold(self, size: int) -> bool:
        return self._held_bytes + size <= HELD_BYTES

    def _settle(self, name: str, etag: str | None, download: Future) -> None:
        """A download ended: its bytes are held, or its spooled copy recorded, with its ETag; a
        failure is forgotten (the next `fetch` asks again, and raises)."""
        with self._lock:
            if self._pending.get(name) is download:
                del self._pending[name]
            if download.cancelled() or download.exception() is not None:
                return
            meta, data, _ = download.result()
            etag = etag if etag is not None else _etag(meta.get("e_tag"))
            self._let_go(name)  # an older copy, of another ETag
            if data is None:
                self._copied[name] = etag
            else:
                self._held[name] = (etag, data)
                self._held_bytes += len(data)

    def _fetched(self, name: str) -> bytes | Path | None:
        """The held bytes or the spooled copy of `name`, fetched if need be; None when the object
        does not exist (remembered too: an absent `_last_checkpoint` is asked for once)."""
        if name in self._absent:
            return None
        try:
            if (download := self._copy(name, None)) is not None:  # its result: _settle may still be to come
                data = download.result()[1]
                return data if data is not None else self.local_path(name)
        except FileNotFoundError:
            self._absent.add(name)
            return None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, self.log_dir / name) from None
        with self._lock:
            held = self._held.get(name)
        return held[1] if held is not None else self.local_path(name)

    def local_copy(self, name: str) -> Path | None:
        """The spooled copy of a checkpoint or sidecar (`_read_as_file`: never held in memory)."""
        return self._fetched(name)

    def read_bytes(self, name: str) -> bytes | None:
        fetched = self._fetched(name)
        return fetched.read_bytes() if isinstance(fetched, Path) else fetched

    def digest(self, name: str) -> FileDigest | None:
        fetched = self._fetched(name)
        return digest_file(fetched) if isinstance(fetched, Path) else None if fetched is None else digest_bytes(fetched)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Write `name` unless it exists (the store decides, atomically); False when it exists."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, NotSupportedError, PreconditionError

        try:
            obstore.put(self.store, f"_delta_log/{name}", data, mode="create")
        except (AlreadyExistsError, PreconditionError):
            return False
        except NotSupportedError as exc:
            raise StorageError(f"{self.log_dir / name}: this store cannot write only-if-absent "
                               f"({_first_line(exc)}); nothing written, as an overwrite could lose a commit") from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, self.log_dir / name) from None
        return True

    def require_put_if_absent(self) -> None:
        """Refuse a store that does not enforce put-if-absent itself. Some S3-compatible servers
        ignore `If-None-Match: *` and overwrite: a conditional PUT of a probe object is sent twice,
        and the second must be refused. The probe (`_delta_log/.delta2sql-put-if-absent-*`, a
        name no Delta reader takes for a log file) is deleted afterwards."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        probe = f".delta2sql-put-if-absent-{uuid.uuid4().hex}"
        try:
            if not self.put_if_absent(probe, b"first"):
                raise StorageError(f"{self.log_dir / probe}: a new name was taken; nothing written")
            try:
                obstore.put(self.store, f"_delta_log/{probe}", b"second", mode="create")
            except (AlreadyExistsError, PreconditionError):
                return  # refused by the store: it enforces put-if-absent
            except Exception as exc:  # noqa: BLE001
                raise self._error(exc, self.log_dir / probe) from None
            raise StorageError(f"{self.uri}: the store overwrote an object on a conditional PUT (If-None-Match: *, "
                               "ifGenerationMatch=0); it cannot guarantee a commit is never overwritten, so nothing "
                               "is written back; use a store or configuration that enforces put-if-absent")
        finally:
            try:
                obstore.delete(self.store, f"_delta_log/{probe}")
            except Exception:  # noqa: BLE001, S110 - the probe is harmless if it stays
                pass

    def set_modification_time(self, name: str, modification_time_ms: int) -> None:
        """An object's last-modified time is the store's to set: readers use in-commit timestamps
        or the time it was written back."""

    def _error(self, exc: BaseException, where: str) -> Delta2SqlError:
        """A message that names the URI and what to set, with no secret in it."""
        from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

        text, full = _summary(exc), str(exc)
        if isinstance(exc, UnauthenticatedError) or any(m in full for m in _CREDENTIAL_ERRORS):
            return StorageError(f"{where}: the store rejected the credentials ({text}); set them in the environment "
                                "(e.g. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_ACCOUNT_KEY) or with "
                                "--storage-option KEY=VALUE")
        if isinstance(exc, PermissionDeniedError) or "AccessDenied" in full:
            return StorageError(f"{where}: access denied ({text}); the credentials need read access to the "
                                "table's _delta_log")
        if "NoSuchBucket" in full or "ContainerNotFound" in full:
            return StorageError(f"{where}: the bucket or container does not exist; check the URI")
        return StorageError(f"{where}: {text}")


TableLog = LocalLog | ObjectStoreLog


class _RangedObject(io.RawIOBase):
    """An object read in place by ranged GETs, as a seekable file for pyarrow."""

    def __init__(self, log: ObjectStoreLog, name: str, size: int) -> None:
        super().__init__()
        self._log, self._name, self._size, self._position = log, name, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        import obstore

        length = min(len(buffer), self._size - self._position)
        if length <= 0:
            return 0
        try:
            data = obstore.get_range(self._log.store, f"_delta_log/{self._name}", start=self._position, length=length)
        except FileNotFoundError:
            raise _gone(self._log.log_dir / self._name) from None
        except Exception as exc:  # noqa: BLE001 - translated to a message naming the object
            raise self._log._error(exc, self._log.log_dir / self._name) from None
        view = memoryview(data)
        buffer[:len(view)] = view
        self._position += len(view)
        return len(view)


def _gone(where) -> ObjectGoneError:
    return ObjectGoneError(f"{where}: listed, but gone when read (removed meanwhile?)")


def _read_as_file(name: str) -> bool:
    """Checkpoints and sidecars, which DuckDB and pyarrow open by path: never held in memory."""
    return ".checkpoint." in name or name.startswith("_sidecars/") or name.endswith(".parquet")


def _log_object(name: str, meta: dict) -> LogObject:
    return LogObject(name, meta["size"], int(meta["last_modified"].timestamp() * 1000), _etag(meta.get("e_tag")))


def _etag(value: str | None) -> str | None:
    """An ETag without its quotes: Azure lists it bare and returns it quoted from GET and PUT."""
    return value.strip('"') if value else value


# What S3 and Azure answer to a wrong key or signature (Azure: a 403 like any denial)
_CREDENTIAL_ERRORS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthenticationFailed",
                      "failed to authenticate the request")


def _summary(exc: BaseException) -> str:
    """The store's own answer, short: HTTP status, error code and message, else the first line."""
    full = str(exc)
    status = re.search(r"status code: (\d{3}[A-Za-z ]*)", full)
    code = re.search(r"<Code>([^<]+)</Code>", full)
    message = re.search(r"<Message>([^<\n]+)", full)
    if status or code:
        return " ".join(part[1].strip() for part in (status, code) if part) + (f": {message[1].strip()}" if message else "")
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]


# Storage options: per table URI (a manifest entry's map), else for every table (--storage-option).
_OPTIONS: dict[str | None, dict[str, str]] = {}
_IO_CONCURRENCY = [DEFAULT_IO_CONCURRENCY]
_OPEN: dict[str, LocalLog | ObjectStoreLog] = {}
_OPEN_LOCK = threading.Lock()
_SESSIONS = [0]


def use_storage_options(options: dict[str, str], uri: str | None = None) -> None:
    """Options for every table (`uri=None`: `--storage-option`), or for the table at `uri` (a
    manifest entry's `storage_options:`, which add to and override the others). Every table's
    earlier options are forgotten when those for every table are given: one command, one set."""
    if uri is None:
        _OPTIONS.clear()
    _OPTIONS[None if uri is None else table_uri(uri)] = dict(options)


def _options_for(uri: str) -> dict[str, str]:
    return {**_OPTIONS.get(None, {}), **_OPTIONS.get(uri, {})}


def set_io_concurrency(requests: int) -> None:
    _IO_CONCURRENCY[0] = requests


def default_table_name(location: str | os.PathLike) -> str:
    """The catalog name a table gets unless given one: its directory's (or prefix's) last part."""
    uri = table_uri(location)
    if not is_object_store_uri(uri):
        return Path(uri).name
    parts = urlsplit(uri)
    return unquote(parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.netloc)


def open_log(location: str | os.PathLike) -> LocalLog | ObjectStoreLog:
    """The table log at `location`; within a `session()`, one object per URI, so nothing is
    fetched twice."""
    uri = table_uri(location)
    with _OPEN_LOCK:
        if uri in _OPEN:
            return _OPEN[uri]
        if is_object_store_uri(uri):
            log = ObjectStoreLog(uri, _options_for(uri), _IO_CONCURRENCY[0])
        else:
            log = LocalLog(uri)
        if _SESSIONS[0]:
            _OPEN[uri] = log  # closed with the session
        elif isinstance(log, ObjectStoreLog):
            atexit.register(log.close)
        return log


@contextmanager
def session():
    """One command's reads: each object is fetched at most once, and the spools are removed at
    the end. Sessions nest (the outermost one closes)."""
    with _OPEN_LOCK:
        _SESSIONS[0] += 1
    try:
        yield
    finally:
        with _OPEN_LOCK:
            _SESSIONS[0] -= 1
            closing = list(_OPEN.values()) if not _SESSIONS[0] else []
            if closing:
                _OPEN.clear()
        for log in closing:
            if isinstance(log, ObjectStoreLog):
                log.close()


def delta_rs_location(uri: str) -> tuple[str, dict[str, str]]:
    """What delta-rs is given to read the table: the same URI and the same storage options."""
    log = open_log(uri)
    return uri, log.delta_rs_options() if isinstance(log, ObjectStoreLog) else {}
