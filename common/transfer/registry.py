"""Scheme registry and the two entry points, ``transfer_in`` and ``transfer_out``.

A scheme only knows how to move bytes. Everything that makes a transfer safe
lives here, once, for all schemes: the temporary name beside the destination
with an atomic rename (a failed download never leaves a file that looks
complete), fsync, size and sha512 verification after every move, retries with
backoff, and ``maybe`` semantics (only a *missing* file is tolerated).
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol
from urllib.parse import urlsplit

from common.transfer.checksum import sha512_file
from common.transfer.errors import TransferError, TransferNotFound, TransferRecord


@dataclass(frozen=True)
class Expected:
    """What a scheme saw of the source while moving it; None where it cannot know."""

    size: int | None = None
    sha512: str | None = None


class Scheme(Protocol):
    """How one URL scheme moves bytes (see :mod:`common.transfer.local` for the model)."""

    def download(self, url: str, target: Path) -> Expected:
        """Write what ``url`` holds into ``target`` (a fresh temporary file).

        Raises TransferNotFound when the source does not exist, TransferError otherwise.
        """
        ...

    def upload(self, source: Path, url: str) -> None:
        """Make ``url`` hold the content of ``source``; never leave a partial file there."""
        ...

    def checksum(self, url: str) -> Expected:
        """Size and sha512 of what ``url`` holds now, to verify an upload."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    attempts: int = 3
    delay: float = 2.0
    factor: float = 2.0
    max_delay: float = 60.0

    def delays(self) -> list[float]:
        """The sleeps between attempts (one fewer than ``attempts``)."""
        out: list[float] = []
        delay = self.delay
        for _ in range(max(self.attempts - 1, 0)):
            out.append(min(delay, self.max_delay))
            delay *= self.factor
        return out


DEFAULT_RETRY = RetryPolicy()
_SCHEMES: dict[str, Scheme] = {}


def register_scheme(names: str | list[str], scheme: Scheme) -> None:
    """Make ``scheme`` handle URLs starting with ``name://`` (a later call replaces it)."""
    for name in [names] if isinstance(names, str) else names:
        _SCHEMES[name.lower()] = scheme


def unregister_scheme(name: str) -> None:
    """Forget a scheme (tests and plug-ins that are unloaded)."""
    _SCHEMES.pop(name.lower(), None)


def registered_schemes() -> list[str]:
    return sorted(_SCHEMES)


def scheme_for(url: str, overrides: Mapping[str, Scheme] | None = None) -> Scheme:
    """The handler for ``url``; plain absolute paths are the ``file`` scheme.

    ``overrides`` (scheme name → handler) win over the registry: an attempt's
    own token-carrying pelican handler, for instance.
    """
    if not isinstance(url, str) or not url:
        raise TransferError(str(url), "empty URL", retryable=False)
    if url.startswith("/"):
        name = "file"
    else:
        name = urlsplit(url).scheme.lower()
        if not name or "://" not in url:
            raise TransferError(url, "neither an absolute path nor a URL", retryable=False)
    if overrides and name in overrides:
        return overrides[name]
    try:
        return _SCHEMES[name]
    except KeyError:
        known = ", ".join(registered_schemes())
        raise TransferError(url, f"no transfer handler for scheme {name!r} (known: {known})",
                            retryable=False) from None


def _fsync_dir(path: Path) -> None:
    """Persist a rename: the directory entry must reach the disk too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _with_retries(url: str, policy: RetryPolicy, once: Callable[[], None]) -> int:
    """Run ``once()`` until it succeeds; returns the number of attempts used."""
    delays = policy.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            once()
            return attempt
        except TransferError as exc:
            if not exc.retryable or attempt > len(delays):
                exc.attempts = attempt
                raise
            time.sleep(delays[attempt - 1])
        except OSError as exc:
            if attempt > len(delays):
                error = TransferError(url, f"{type(exc).__name__}: {exc}")
                error.attempts = attempt
                raise error from exc
            time.sleep(delays[attempt - 1])


def transfer_in(url: str, dest: str | Path, *, optional: bool = False,
                retry: RetryPolicy | None = None,
                schemes: Mapping[str, Scheme] | None = None) -> TransferRecord:
    """Download ``url`` to ``dest`` atomically and verify it.

    ``optional`` (``transfer: maybe``): a missing source gives a record with
    ``skipped=True`` instead of an error. Any other failure raises TransferError.
    """
    dest = Path(dest)
    record = TransferRecord(url=url, local=str(dest), direction="in")
    scheme = scheme_for(url, schemes)
    started = time.monotonic()

    def once() -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.parent / f".{dest.name}.part-{uuid.uuid4().hex[:12]}"
        try:
            expected = scheme.download(url, part)
            with open(part, "rb+") as handle:
                os.fsync(handle.fileno())
            size = part.stat().st_size
            digest = sha512_file(part)
            if expected.size is not None and expected.size != size:
                raise TransferError(url, f"size mismatch: source {expected.size} bytes, "
                                         f"received {size}")
            if expected.sha512 is not None and expected.sha512 != digest:
                raise TransferError(url, "sha512 mismatch between source and received file")
            os.replace(part, dest)
            _fsync_dir(dest.parent)
        finally:
            part.unlink(missing_ok=True)
        record.size, record.sha512 = size, digest

    try:
        record.attempts = _with_retries(url, retry or DEFAULT_RETRY, once)
        record.ok = True
    except TransferNotFound as exc:
        record.attempts = exc.attempts
        if not optional:
            raise
        record.ok, record.skipped, record.error = True, True, exc.reason
    record.seconds = time.monotonic() - started
    return record


def transfer_out(src: str | Path, url: str, *, optional: bool = False,
                 retry: RetryPolicy | None = None,
                schemes: Mapping[str, Scheme] | None = None) -> TransferRecord:
    """Upload ``src`` to ``url`` and verify size and sha512 at the destination.

    Only a verified output is reported ``ok``: the caller must not declare the
    task complete before every required output came back from here.
    """
    src = Path(src)
    record = TransferRecord(url=url, local=str(src), direction="out")
    scheme = scheme_for(url, schemes)
    started = time.monotonic()
    if not src.is_file():
        if optional:
            record.ok, record.skipped, record.error = True, True, "no such file"
            return record
        raise TransferError(url, f"output file {src} was not produced", retryable=False)
    size = src.stat().st_size
    digest = sha512_file(src)

    def once() -> None:
        scheme.upload(src, url)
        there = scheme.checksum(url)
        if there.size is not None and there.size != size:
            raise TransferError(url, f"size mismatch after upload: {size} bytes sent, "
                                     f"{there.size} at the destination")
        if there.sha512 is not None and there.sha512 != digest:
            raise TransferError(url, "sha512 mismatch after upload")

    record.attempts = _with_retries(url, retry or DEFAULT_RETRY, once)
    record.ok, record.size, record.sha512 = True, size, digest
    record.seconds = time.monotonic() - started
    return record
