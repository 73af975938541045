"""Scratch files on disk plus their records in the store.

A pilot uses ``<server>/scratch`` as ``site_temp``, so IceProd's layout
``$(site_temp)/$(dataset)/$(job)/file`` (job_temp) and
``$(site_temp)/$(dataset)/file`` (dataset_temp) land here. The first path
segment is the dataset number (or its id); a numeric second segment is the
job index, which is how a job's files are found and removed when it
completes.

An upload streams to a hidden temporary file beside its target, is checked
against the size and sha512 the client announced, and only then renamed
into place: a reader never sees half a file, and a corrupt upload never
replaces a good one.
"""
from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import pathlib
import shutil
import uuid
from dataclasses import dataclass
from typing import AsyncIterable

from server.errors import Refused
from server.scheduling.datasets import dataset_by_key
from server.settings import Settings
from server.store import ConflictError, Dataset, InvalidArgumentError, NotFoundError, ScratchFile, Store

log = logging.getLogger("frazil.server.scratch")

TEMP_PREFIX = ".frazil-upload-"
NAME_MAX = 255
"""Longest file name most file systems accept (bytes)."""


def scratch_root(settings: Settings) -> pathlib.Path:
    return settings.path(settings.scratch_dir, "scratch")


def safe_relative(path: str) -> list[str]:
    """Path segments, refusing anything that could leave the dataset's folder."""
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", "..") or "\x00" in part or "\\" in part:
            raise InvalidArgumentError(
                f"invalid scratch path {path!r}: no empty, '.', '..' or backslash segments allowed")
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            raise InvalidArgumentError(f"invalid scratch path: a name is longer than {NAME_MAX} bytes")
        if part.startswith(TEMP_PREFIX):
            raise InvalidArgumentError(
                f"invalid scratch path {path!r}: names starting with {TEMP_PREFIX!r} are reserved")
    return parts


def job_index_of(parts: list[str]) -> int | None:
    """``<job>/file`` is a job_temp file; anything else belongs to the dataset."""
    return int(parts[0]) if len(parts) > 1 and parts[0].isdigit() else None


async def dataset_of(store: Store, key: str) -> Dataset:
    """The dataset named by id or number (the route already checked the caller's right)."""
    dataset = await dataset_by_key(store, key)
    if dataset is None:
        raise NotFoundError("Dataset not found")
    return dataset


@dataclass
class ScratchPath:
    """One file of a dataset's scratch space: where it lies and how it is recorded."""

    dataset: Dataset
    parts: list[str]
    record_path: str
    target: pathlib.Path

    @property
    def shown(self) -> str:
        return "/".join(self.parts)


def locate(settings: Settings, dataset: Dataset, path: str) -> ScratchPath:
    parts = safe_relative(path)
    root = scratch_root(settings).resolve()
    target = root.joinpath(dataset.dataset_id, *parts)
    # symlinks planted inside the store must not lead out of it either
    if not os.path.realpath(target).startswith(str(root) + os.sep):
        raise InvalidArgumentError(f"invalid scratch path {'/'.join(parts)!r}: outside the scratch store")
    return ScratchPath(dataset, parts, "/".join([dataset.dataset_id, *parts]), target)


def _storage_error(where: ScratchPath, exc: OSError) -> Exception:
    """A full disk is the server's problem (507, worth retrying elsewhere or
    later); an impossible name is the client's (400)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return Refused(507, f"scratch store is full: cannot store {where.shown!r}")
    return InvalidArgumentError(f"cannot store scratch path {where.shown!r}: {exc.strerror or exc}")


async def _receive(chunks: AsyncIterable[bytes], temp: pathlib.Path) -> tuple[int, str]:
    digest = hashlib.sha512()
    size = 0
    handle = await asyncio.to_thread(open, temp, "wb")
    try:
        async for chunk in chunks:
            size += len(chunk)
            await asyncio.to_thread(lambda c=chunk: (handle.write(c), digest.update(c)))
        await asyncio.to_thread(lambda: (handle.flush(), os.fsync(handle.fileno())))
    finally:
        await asyncio.to_thread(handle.close)
    return size, digest.hexdigest()


async def put_file(store: Store, where: ScratchPath, chunks: AsyncIterable[bytes], *, content_length: int | None,
                   expected_size: int | None, expected_sha: str | None) -> ScratchFile:
    """Store an upload (all or nothing) and record it."""
    target = where.target
    try:
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConflictError(f"scratch path {where.shown!r}: a parent is a file") from None
    except OSError as exc:
        raise _storage_error(where, exc) from None
    try:
        is_folder = target.is_dir()
    except OSError as exc:  # e.g. the whole path is longer than the system allows
        raise _storage_error(where, exc) from None
    if is_folder:
        raise ConflictError(f"scratch path {where.shown!r} is a folder")
    temp = target.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
    try:
        try:
            size, sha512 = await _receive(chunks, temp)
        except OSError as exc:
            raise _storage_error(where, exc) from None
        problem = None
        if content_length is not None and size != content_length:
            problem = f"received {size} bytes, Content-Length said {content_length}"
        elif expected_size is not None and size != expected_size:
            problem = f"size mismatch: received {size} bytes, X-Size says {expected_size}"
        elif expected_sha is not None and sha512 != expected_sha:
            problem = f"sha512 mismatch: received {sha512[:16]}..., expected {expected_sha[:16]}..."
        if problem:
            raise InvalidArgumentError(f"upload of {where.shown!r} refused: {problem}")
        await asyncio.to_thread(os.replace, temp, target)
    finally:
        if temp.exists():
            await asyncio.to_thread(temp.unlink)
    record = ScratchFile(dataset_id=where.dataset.dataset_id, path=where.record_path, size=size, sha512=sha512,
                         job_index=job_index_of(where.parts))
    await store.add_scratch_file(record)
    return record


async def find_file(store: Store, where: ScratchPath) -> ScratchFile:
    """The record of an existing scratch file (404 when the record or the bytes are gone)."""
    for record in await store.list_scratch_files(where.dataset.dataset_id, job_index_of(where.parts)):
        if record.path == where.record_path:
            if not where.target.is_file():
                break
            return record
    raise NotFoundError(f"scratch file {where.shown!r} not found")


async def delete_file(store: Store, where: ScratchPath) -> None:
    records = await store.list_scratch_files(where.dataset.dataset_id, job_index_of(where.parts))
    if not any(record.path == where.record_path for record in records):
        raise NotFoundError(f"scratch file {where.shown!r} not found")
    try:
        await asyncio.to_thread(where.target.unlink)
    except FileNotFoundError:
        raise NotFoundError(f"scratch file {where.shown!r} not found") from None
    except IsADirectoryError:
        raise Refused(403, f"scratch path {where.shown!r} is a folder") from None


async def cleanup_job_scratch(store: Store, settings: Settings, dataset_id: str, job_index: int) -> int:
    """Remove a completed job's job_temp files (records and bytes, including
    abandoned partial uploads); returns how many recorded files went."""
    root = scratch_root(settings)
    job_dir = root / dataset_id / str(job_index)
    # Most jobs never use the scratch store, and this runs after every job
    # that completes: a file is recorded only after it was renamed into its
    # job's folder, so a job without a folder has nothing to clean (a stat,
    # not a store read, finds that out).
    if not job_dir.exists():
        return 0
    records = await store.delete_scratch_files(dataset_id, job_index)

    def remove() -> None:
        for record in records:
            try:
                (root / record.path).unlink()
            except FileNotFoundError:
                pass
        if job_dir.is_dir():
            shutil.rmtree(job_dir, ignore_errors=True)

    await asyncio.to_thread(remove)
    if records:
        log.info("removed %d scratch file(s) of dataset %s job %d", len(records), dataset_id, job_index)
    return len(records)
