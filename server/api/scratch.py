"""The scratch store: job_temp / dataset_temp files without a remote (DESIGN.md §3.6).

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
import base64
import binascii
import errno
import hashlib
import logging
import os
import pathlib
import shutil
import uuid

from aiohttp import web

from server.api.errors import ApiError, bad_request, forbidden, not_found
from server.api.params import json_reply
from server.api.routing import ApiRoutes
from server.keys import SETTINGS, STORE
from server.settings import Settings
from server.store import Dataset, ScratchFile

log = logging.getLogger("frazil.server.scratch")


class _ScratchRoutes(ApiRoutes):
    """``{path}`` spans several segments: aiohttp needs the ``{path:.+}``
    pattern, while the OpenAPI document must keep the plain parameter name."""

    def register(self, app: web.Application) -> None:
        for spec in self.specs:
            app.router.add_route(spec.method, spec.path.replace("{path}", "{path:.+}"), spec.handler)


routes = _ScratchRoutes("scratch")
PATH = "/scratch/{dataset_id}/{path}"
CHUNK = 1 << 20
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
            raise bad_request(f"invalid scratch path {path!r}: no empty, '.', '..' or backslash segments allowed")
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            raise bad_request(f"invalid scratch path: a name is longer than {NAME_MAX} bytes")
        if part.startswith(TEMP_PREFIX):
            raise bad_request(f"invalid scratch path {path!r}: names starting with {TEMP_PREFIX!r} are reserved")
    return parts


def job_index_of(parts: list[str]) -> int | None:
    """``<job>/file`` is a job_temp file; anything else belongs to the dataset."""
    return int(parts[0]) if len(parts) > 1 and parts[0].isdigit() else None


async def _dataset(request: web.Request) -> Dataset:
    """The dataset named by id or number (the route declaration already checked
    the caller's right: pilots use every dataset's scratch files, users need the right)."""
    key = request.match_info["dataset_id"]
    store = request.app[STORE]
    if key.isdigit() and len(key) > 18:  # no such number; and it would overflow the database's integers
        raise not_found("Dataset not found")
    dataset = await (store.get_dataset_by_number(int(key)) if key.isdigit() else store.get_dataset(key))
    if dataset is None:
        raise not_found("Dataset not found")
    return dataset


def _target(settings: Settings, dataset: Dataset, parts: list[str]) -> tuple[str, pathlib.Path]:
    root = scratch_root(settings).resolve()
    record_path = "/".join([dataset.dataset_id, *parts])
    target = root.joinpath(dataset.dataset_id, *parts)
    # symlinks planted inside the store must not lead out of it either
    if not os.path.realpath(target).startswith(str(root) + os.sep):
        raise bad_request(f"invalid scratch path {'/'.join(parts)!r}: outside the scratch store")
    return record_path, target


def _expected(request: web.Request) -> tuple[int | None, str | None]:
    size_header = request.headers.get("X-Size")
    size = None
    if size_header is not None:
        if not size_header.strip().isdigit():
            raise bad_request(f"header X-Size must be a whole number of bytes, got {size_header!r}")
        size = int(size_header)
    sha512 = request.headers.get("X-Sha512")
    digest = request.headers.get("Digest")
    if sha512 is None and digest:
        for item in digest.split(","):
            name, _, value = item.strip().partition("=")
            if name.lower() == "sha-512":
                try:
                    sha512 = base64.b64decode(value, validate=True).hex()
                except (binascii.Error, ValueError):
                    raise bad_request("header Digest: sha-512 value is not base64") from None
    if sha512 is not None:
        sha512 = sha512.strip().lower()
        if len(sha512) != 128 or any(c not in "0123456789abcdef" for c in sha512):
            raise bad_request("header X-Sha512 must be 128 hex digits")
    return size, sha512


async def _receive(request: web.Request, temp: pathlib.Path) -> tuple[int, str]:
    digest = hashlib.sha512()
    size = 0
    handle = await asyncio.to_thread(open, temp, "wb")
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            size += len(chunk)
            await asyncio.to_thread(lambda c=chunk: (handle.write(c), digest.update(c)))
        await asyncio.to_thread(lambda: (handle.flush(), os.fsync(handle.fileno())))
    finally:
        await asyncio.to_thread(handle.close)
    return size, digest.hexdigest()


def _storage_error(parts: list[str], exc: OSError) -> ApiError:
    """A full disk is the server's problem (507, worth retrying elsewhere or
    later); an impossible name is the client's (400)."""
    where = "/".join(parts)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ApiError(507, f"scratch store is full: cannot store {where!r}")
    return bad_request(f"cannot store scratch path {where!r}: {exc.strerror or exc}")


@routes.put(PATH, summary="upload a scratch file (checked against X-Size / X-Sha512 or Digest: sha-512=...)",
            right="write", pilot=True, responses={201: "stored: {size, sha512}", 409: "the path is taken by a folder"})
async def put_file(request: web.Request) -> web.Response:
    dataset = await _dataset(request)
    parts = safe_relative(request.match_info["path"])
    record_path, target = _target(request.app[SETTINGS], dataset, parts)
    expected_size, expected_sha = _expected(request)
    try:
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ApiError(409, f"scratch path {'/'.join(parts)!r}: a parent is a file") from None
    except OSError as exc:
        raise _storage_error(parts, exc) from None
    try:
        is_folder = target.is_dir()
    except OSError as exc:  # e.g. the whole path is longer than the system allows
        raise _storage_error(parts, exc) from None
    if is_folder:
        raise ApiError(409, f"scratch path {'/'.join(parts)!r} is a folder")
    temp = target.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
    try:
        try:
            size, sha512 = await _receive(request, temp)
        except OSError as exc:
            raise _storage_error(parts, exc) from None
        problem = None
        if request.content_length is not None and size != request.content_length:
            problem = f"received {size} bytes, Content-Length said {request.content_length}"
        elif expected_size is not None and size != expected_size:
            problem = f"size mismatch: received {size} bytes, X-Size says {expected_size}"
        elif expected_sha is not None and sha512 != expected_sha:
            problem = f"sha512 mismatch: received {sha512[:16]}..., expected {expected_sha[:16]}..."
        if problem:
            raise bad_request(f"upload of {'/'.join(parts)!r} refused: {problem}")
        await asyncio.to_thread(os.replace, temp, target)
    finally:
        if temp.exists():
            await asyncio.to_thread(temp.unlink)
    await request.app[STORE].add_scratch_file(ScratchFile(
        dataset_id=dataset.dataset_id, path=record_path, size=size, sha512=sha512, job_index=job_index_of(parts)))
    return json_reply({"size": size, "sha512": sha512}, status=201)


async def _record(request: web.Request, dataset: Dataset, record_path: str, parts: list[str]) -> ScratchFile:
    records = await request.app[STORE].list_scratch_files(dataset.dataset_id, job_index_of(parts))
    for record in records:
        if record.path == record_path:
            return record
    raise not_found(f"scratch file {'/'.join(parts)!r} not found")


@routes.get(PATH, summary="download a scratch file (X-Sha512 and Digest headers carry its checksum)", right="read",
             pilot=True)
async def get_file(request: web.Request) -> web.StreamResponse:
    dataset = await _dataset(request)
    parts = safe_relative(request.match_info["path"])
    record_path, target = _target(request.app[SETTINGS], dataset, parts)
    record = await _record(request, dataset, record_path, parts)
    if not target.is_file():
        raise not_found(f"scratch file {'/'.join(parts)!r} not found")
    digest = base64.b64encode(bytes.fromhex(record.sha512)).decode()
    return web.FileResponse(target, headers={"X-Sha512": record.sha512, "X-Size": str(record.size),
                                             "Digest": f"sha-512={digest}",
                                             "Content-Type": "application/octet-stream"})


@routes.delete(PATH, summary="delete a scratch file", right="write", pilot=True)
async def delete_file(request: web.Request) -> web.Response:
    dataset = await _dataset(request)
    parts = safe_relative(request.match_info["path"])
    record_path, target = _target(request.app[SETTINGS], dataset, parts)
    await _record(request, dataset, record_path, parts)
    try:
        await asyncio.to_thread(target.unlink)
    except FileNotFoundError:
        raise not_found(f"scratch file {'/'.join(parts)!r} not found") from None
    except IsADirectoryError:
        raise forbidden(f"scratch path {'/'.join(parts)!r} is a folder") from None
    return json_reply({})


async def cleanup_job_scratch(app: web.Application, dataset_id: str, job_index: int) -> int:
    """Remove a completed job's job_temp files (records and bytes, including
    abandoned partial uploads); returns how many recorded files went."""
    store = app[STORE]
    root = scratch_root(app[SETTINGS])
    job_dir = root / dataset_id / str(job_index)
    # most jobs never use the scratch store: a read (not a write) finds that out
    if not await store.list_scratch_files(dataset_id, job_index) and not job_dir.exists():
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


__all__ = ["cleanup_job_scratch", "routes", "scratch_root"]
