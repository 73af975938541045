"""``http://`` and ``https://`` via pycurl: GET to a temporary file, PUT upload.

Verification after PUT reads the file back and hashes it: HTTP servers do not
agree on a digest header, and a wrong "success" would be reported as a
verified output forever.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

import pycurl

from common.transfer.errors import TransferError, TransferNotFound
from common.transfer.registry import Expected

# Statuses another try may fix; any other 4xx is the request's fault.
RETRYABLE_STATUS = frozenset({408, 425, 429})
# The _T variant (curl ≥ 7.55) is an integer; the old one is deprecated.
_LENGTH_INFO = getattr(pycurl, "CONTENT_LENGTH_DOWNLOAD_T", pycurl.CONTENT_LENGTH_DOWNLOAD)


@dataclass
class HttpFiles:
    """pycurl-based HTTP transfers; one curl handle per transfer (thread-safe)."""

    connect_timeout: float = 30.0
    low_speed_time: int = 60
    """Abort when fewer than ``low_speed_limit`` bytes/s arrive for this many seconds."""
    low_speed_limit: int = 1
    max_redirects: int = 10
    headers: dict[str, str] = field(default_factory=dict)
    """Extra request headers (e.g. ``Authorization`` for the server's scratch store)."""

    def _handle(self, url: str) -> pycurl.Curl:
        curl = pycurl.Curl()
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.FOLLOWLOCATION, 1)
        curl.setopt(pycurl.MAXREDIRS, self.max_redirects)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, int(self.connect_timeout * 1000))
        curl.setopt(pycurl.LOW_SPEED_LIMIT, self.low_speed_limit)
        curl.setopt(pycurl.LOW_SPEED_TIME, self.low_speed_time)
        curl.setopt(pycurl.NOSIGNAL, 1)
        if self.headers:
            curl.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in self.headers.items()])
        return curl

    def _perform(self, curl: pycurl.Curl, url: str) -> int:
        try:
            curl.perform()
        except pycurl.error as exc:
            code, message = exc.args if len(exc.args) == 2 else (0, str(exc))
            raise TransferError(url, f"curl error {code}: {message}") from None
        return int(curl.getinfo(pycurl.RESPONSE_CODE))

    @staticmethod
    def _check_status(url: str, status: int, verb: str) -> None:
        if status in (404, 410):
            raise TransferNotFound(url, f"HTTP {status} on {verb}")
        if status >= 400 or status < 200:
            retryable = status >= 500 or status in RETRYABLE_STATUS
            raise TransferError(url, f"HTTP {status} on {verb}", retryable=retryable)

    def _get(self, url: str, sink: Callable[[bytes], object]) -> tuple[int, int | None]:
        curl = self._handle(url)
        try:
            curl.setopt(pycurl.WRITEFUNCTION, sink)
            status = self._perform(curl, url)
            length = curl.getinfo(_LENGTH_INFO)
        finally:
            curl.close()
        self._check_status(url, status, "GET")
        return status, int(length) if length is not None and length >= 0 else None

    def download(self, url: str, target: Path) -> Expected:
        with open(target, "wb") as out:
            _, length = self._get(url, out.write)
        return Expected(size=length)

    def upload(self, source: Path, url: str) -> None:
        curl = self._handle(url)
        try:
            with open(source, "rb") as handle:
                self._put(curl, handle, source.stat().st_size)
                status = self._perform(curl, url)
        finally:
            curl.close()
        self._check_status(url, status, "PUT")

    @staticmethod
    def _put(curl: pycurl.Curl, handle: BinaryIO, size: int) -> None:
        curl.setopt(pycurl.UPLOAD, 1)
        curl.setopt(pycurl.READDATA, handle)
        curl.setopt(pycurl.INFILESIZE_LARGE, size)
        curl.setopt(pycurl.WRITEFUNCTION, lambda _data: None)

    def checksum(self, url: str) -> Expected:
        digest = hashlib.sha512()
        size = 0

        def sink(block: bytes) -> None:
            nonlocal size
            digest.update(block)
            size += len(block)

        try:
            self._get(url, sink)
        except TransferNotFound:
            raise TransferError(url, "missing at the destination after upload") from None
        return Expected(size=size, sha512=digest.hexdigest())
