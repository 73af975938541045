"""Plain absolute paths and ``file://`` URLs."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from common.transfer.checksum import copy_and_hash, sha512_file
from common.transfer.errors import TransferError, TransferNotFound
from common.transfer.registry import Expected


def local_path(url: str) -> Path:
    """The filesystem path a plain path or ``file://`` URL names."""
    if url.startswith("/"):
        return Path(url)
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise TransferError(url, f"file:// URL names another host ({parts.netloc!r})",
                            retryable=False)
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise TransferError(url, "file:// URL without an absolute path", retryable=False)
    return Path(path)


class LocalFiles:
    """Copies within this machine's filesystems (shared filesystems included)."""

    def download(self, url: str, target: Path) -> Expected:
        path = local_path(url)
        try:
            with open(path, "rb") as source, open(target, "wb") as out:
                size, digest = copy_and_hash(source, out)
        except FileNotFoundError:
            raise TransferNotFound(url) from None
        except IsADirectoryError:
            raise TransferError(url, "is a directory, not a file", retryable=False) from None
        except PermissionError as exc:
            raise TransferError(url, f"permission denied: {exc}", retryable=False) from None
        return Expected(size=size, sha512=digest)

    def upload(self, source: Path, url: str) -> None:
        path = local_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransferError(url, f"cannot create {path.parent}: {exc}") from exc
        part = path.parent / f".{path.name}.part-{uuid.uuid4().hex[:12]}"
        try:
            with open(source, "rb") as src, open(part, "wb") as out:
                copy_and_hash(src, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, path)
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise TransferError(url, f"{type(exc).__name__}: {exc}") from exc
        finally:
            part.unlink(missing_ok=True)

    def checksum(self, url: str) -> Expected:
        path = local_path(url)
        try:
            return Expected(size=path.stat().st_size, sha512=sha512_file(path))
        except FileNotFoundError:
            raise TransferError(url, "missing at the destination after upload") from None
