"""``ftp://`` and ``gsiftp://`` via ``globus-url-copy`` (Debian ``globus-gass-copy-progs``).

GridFTP servers speak FTP with GSI security and extensions; ``globus-url-copy``
handles both flavours (anonymous ``ftp://`` and certificate-authenticated
``gsiftp://``, whose credentials come from the usual ``X509_*`` environment:
``X509_USER_PROXY`` or ``X509_USER_CERT``/``X509_USER_KEY``, ``X509_CERT_DIR``).

* Binary mode always (``-binary``): an ASCII-mode transfer silently rewrites
  line ends, and the sha512 check would then fail every time.
* Timeouts: ``-stall-timeout`` ends a transfer that stopped moving data, and a
  hard wall-clock limit on the process covers a server that accepts the
  control connection and then says nothing.
* Downloads go to the temporary name the registry hands us (it then verifies
  size and sha512 and renames atomically).
* Uploads are verified by **downloading the file back** and hashing it
  (``checksum``): GridFTP's own ``CKSM`` command is optional on servers and
  ``-list`` shows no sizes, while a read-back proves exactly what a later
  reader will get. ``globus-url-copy`` cannot rename remote files, so an upload
  cut in the middle can leave a partial file at the destination; it is never
  reported (the task does not complete) and the retried upload overwrites it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from common.transfer.checksum import BLOCK
from common.transfer.errors import TransferError, TransferNotFound
from common.transfer.registry import Expected

PROGRAM = "globus-url-copy"
# What globus-url-copy prints when the remote file does not exist (the server's
# 500/550 reply carries the errno text of the failed open).
_MISSING = ("No such file or directory", "does not exist", "550 ", "File not found")
# Problems another try cannot fix: bad credentials, refused permission.
_PERMANENT = ("Permission denied", "authentication failed", "Authentication Error",
              "could not find a valid credential", "Couldn't find valid credentials",
              "530 ", "certificate has expired")


@dataclass
class GridFtpFiles:
    """Transfers through ``globus-url-copy``, one process per transfer (thread-safe)."""

    program: str = PROGRAM
    stall_timeout: int = 60
    """Seconds without data movement before globus-url-copy gives up."""
    timeout: float = 6 * 3600.0
    """Hard wall-clock limit for one transfer process."""
    extra_args: list[str] = field(default_factory=list)
    """More globus-url-copy options (e.g. ``-p 4`` for parallel streams)."""

    def _command(self, url: str, source: str, dest: str, verb: str) -> list[str]:
        # Uploads create missing directories (-create-dest): output paths like
        # .../0000000-0000999/out.i3 name directories nobody made beforehand.
        create = ["-create-dest"] if verb == "upload" else []
        return [self._binary(url), "-binary", "-stall-timeout", str(self.stall_timeout), *create,
                *self.extra_args, source, dest]

    def _binary(self, url: str) -> str:
        found = shutil.which(self.program)
        if found is None:
            raise TransferError(url, f"{self.program} not found on PATH "
                                     "(install Debian's globus-gass-copy-progs)", retryable=False)
        return found

    def _run(self, url: str, source: str, dest: str, verb: str) -> None:
        command = self._command(url, source, dest, verb)
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=self.timeout, env=os.environ.copy())
        except subprocess.TimeoutExpired:
            raise TransferError(url, f"{verb} did not finish within {self.timeout:g} s") from None
        except OSError as exc:
            raise TransferError(url, f"cannot run {command[0]}: {exc.strerror or exc}",
                                retryable=False) from None
        if done.returncode == 0:
            return
        text = (done.stderr or done.stdout).decode(errors="replace").strip()
        summary = _summary(text) or f"exit status {done.returncode}"
        if verb == "download" and any(marker in text for marker in _MISSING):
            raise TransferNotFound(url, f"not found: {summary}")
        retryable = not any(marker.lower() in text.lower() for marker in _PERMANENT)
        raise TransferError(url, f"globus-url-copy {verb} failed: {summary}", retryable=retryable)

    def download(self, url: str, target: Path) -> Expected:
        self._run(url, url, Path(target).resolve().as_uri(), "download")
        return Expected()

    def upload(self, source: Path, url: str) -> None:
        self._run(url, Path(source).resolve().as_uri(), url, "upload")

    def checksum(self, url: str) -> Expected:
        """Read the uploaded file back and hash it (see the module docstring for why)."""
        with tempfile.TemporaryDirectory(prefix="frazil-gridftp-verify-") as scratch:
            copy = Path(scratch) / "readback"
            try:
                self._run(url, url, copy.as_uri(), "download")
            except TransferNotFound:
                raise TransferError(url, "missing at the destination after upload") from None
            digest = hashlib.sha512()
            size = 0
            with open(copy, "rb") as handle:
                for block in iter(lambda: handle.read(BLOCK), b""):
                    digest.update(block)
                    size += len(block)
        return Expected(size=size, sha512=digest.hexdigest())


def _summary(text: str, limit: int = 400) -> str:
    """The informative part of globus-url-copy's error output, on one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("Source:", "Dest:"))]
    joined = "; ".join(lines)
    return joined if len(joined) <= limit else joined[:limit] + "..."
