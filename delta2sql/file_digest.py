"""sha256, size and last byte of a file, read in 1 MiB chunks: a checkpoint can be gigabytes,
so no caller ever holds a whole file in memory to hash it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size_bytes: int
    ends_with_newline: bool


def digest_bytes(data: bytes) -> FileDigest:
    """The same of bytes already in memory (a commit)."""
    return FileDigest(hashlib.sha256(data).hexdigest(), len(data), data[-1:] == b"\n")


def digest_file(path: Path) -> FileDigest:
    digest, size, last = hashlib.sha256(), 0, b""
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
            size += len(chunk)
            last = chunk[-1:]
    return FileDigest(digest.hexdigest(), size, last == b"\n")
