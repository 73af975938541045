"""Streaming checksums: files are hashed in fixed-size blocks so size never matters."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 20


def sha512_file(path: str | Path) -> str:
    """Hex sha512 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_and_hash(source: BinaryIO, target: BinaryIO) -> tuple[int, str]:
    """Copy a stream and hash it in the same pass: returns (bytes, hex sha512)."""
    digest = hashlib.sha512()
    size = 0
    for block in iter(lambda: source.read(BLOCK), b""):
        target.write(block)
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()
