"""Plain absolute paths and ``file://`` URLs.

Outputs (uploads) are confined (issue 11): a :class:`LocalFiles` made with
``roots`` writes only below one of them and never into a ``denied`` path
(the pilot gets both from the claim reply, ``file_roots`` and
``file_denied``). A path with a ``..`` segment is refused whatever the roots
(no escape by normalisation), a symbolic link on the way that leads outside
the roots is refused (the check is on the real path of the deepest folder
that exists, before anything is created, and again after), and an existing
file is replaced only if it is a plain file this process's user owns, with
its mode kept: an output never changes an existing file's owner or mode.
These refusals are :class:`OutsideRoots`: not retried, reported as a
``config`` failure (physics class: the task is not retried either, another
try would write the same path). ``roots=None`` (the library default, used by
tools that run no task code) confines nothing but still refuses ``..``.
"""
from __future__ import annotations

import os
import posixpath
import stat
import uuid
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlsplit

from common.transfer.checksum import copy_and_hash, sha512_file
from common.transfer.errors import TransferError, TransferNotFound
from common.transfer.registry import Expected


class OutsideRoots(TransferError):
    """A ``file://`` output this pilot may not write: outside the allowed
    roots, in a denied path, through ``..`` or a link, or over a file of
    another owner. Not retried; a ``config`` failure (final)."""

    kind = "config"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason, retryable=False)


def has_dotdot(path: str) -> bool:
    return ".." in path.split("/")


def within(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or below it (both absolute and normalised)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def escape_reason(path: str, roots: Sequence[str], denied: Sequence[str] = ()) -> str | None:
    """Why writing ``path`` (absolute) is not allowed by ``roots``/``denied``,
    by its text alone; None when it is allowed. Used at submit for static
    paths and by the pilot before it touches the file system."""
    if has_dotdot(path):
        return "the path has a '..' segment (outputs must name their place plainly)"
    clean = posixpath.normpath(path)
    for folder in denied:
        if within(clean, posixpath.normpath(folder)):
            return f"{folder} belongs to the frazil server"
    if not roots:
        return "file:// outputs are not allowed here (no allowed roots for this pilot: server settings " \
               "local_file_roots / grid_file_roots, docs/config.md)"
    if not any(within(clean, posixpath.normpath(root)) and clean != posixpath.normpath(root) for root in roots):
        return f"outside the allowed roots ({', '.join(roots)})"
    return None


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
    """Copies within this machine's filesystems (shared filesystems included);
    uploads confined to ``roots`` less ``denied`` (module docstring)."""

    def __init__(self, roots: Sequence[str] | None = None, denied: Sequence[str] = ()) -> None:
        self.roots = None if roots is None else [str(r) for r in roots]
        self.denied = [str(d) for d in denied]

    def _check(self, url: str, path: Path) -> None:
        if self.roots is None:
            if has_dotdot(str(path)):
                raise OutsideRoots(url, "the path has a '..' segment (outputs must name their place plainly)")
            return
        reason = escape_reason(str(path), self.roots, self.denied)
        if reason is None:  # the text is inside; the real place must be too (links)
            existing = path.parent
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            # where the file would really land: links resolved in what exists, the rest as named
            real = os.path.join(os.path.realpath(existing), os.path.relpath(path, existing))
            reason = escape_reason(real, [os.path.realpath(r) for r in self.roots],
                                   [os.path.realpath(d) for d in self.denied])
            if reason is not None:
                reason = f"{existing} leads to {real}: {reason}"
        if reason is not None:
            raise OutsideRoots(url, reason)

    def _existing_mode(self, url: str, path: Path) -> int | None:
        """The mode to keep when ``path`` exists (a plain file of ours), else None."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise OutsideRoots(url, f"{path} is a symbolic link: outputs never write through links")
        if not stat.S_ISREG(info.st_mode):
            raise OutsideRoots(url, f"{path} exists and is not a plain file")
        if info.st_uid != os.geteuid():
            raise OutsideRoots(url, f"{path} exists and belongs to uid {info.st_uid}: an output never changes "
                                    "an existing file's owner")
        return stat.S_IMODE(info.st_mode)

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
        self._check(url, path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransferError(url, f"cannot create {path.parent}: {exc}") from exc
        self._check(url, path)  # a link swapped in meanwhile
        keep_mode = self._existing_mode(url, path)
        part = path.parent / f".{path.name}.part-{uuid.uuid4().hex[:12]}"
        try:
            with open(source, "rb") as src, open(part, "wb") as out:
                copy_and_hash(src, out)
                out.flush()
                if keep_mode is not None:
                    os.fchmod(out.fileno(), keep_mode)
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
