"""Transfer records and errors shared by every scheme.

Kept free of any scheme so that the runner (and later the server's scratch
store) can import the record type without pulling in pycurl.
"""
from __future__ import annotations

from dataclasses import dataclass


class TransferError(Exception):
    """A transfer that failed; the runner reports it as a non-physics "transfer" failure.

    ``retryable`` is False for problems another try cannot fix (an unknown
    scheme, a missing source), so the retry loop gives up at once.
    """

    kind = "transfer"
    """The failure kind the pilot reports: "transfer", or "credentials" (a refused token)."""

    def __init__(self, url: str, reason: str, *, retryable: bool = True) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.retryable = retryable
        self.attempts = 1
        """How many tries were made before giving up (set by the retry loop)."""


class TransferNotFound(TransferError):
    """The source does not exist: the one error that ``transfer: maybe`` tolerates."""

    def __init__(self, url: str, reason: str = "no such file") -> None:
        super().__init__(url, reason, retryable=False)


class TransferCredentialsError(TransferError):
    """The storage refused the credentials (HTTP 401/403): a ``credentials`` failure.

    Not retried: another try would send the same token. The reason names the
    scope that is missing.
    """

    kind = "credentials"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, f"credentials: {reason}", retryable=False)


@dataclass
class TransferRecord:
    """What happened to one file, as stored with the attempt for provenance."""

    url: str
    local: str
    direction: str
    """"in" (stage-in) or "out" (stage-out)."""
    size: int | None = None
    sha512: str | None = None
    ok: bool = False
    error: str | None = None
    skipped: bool = False
    """True when an optional (``maybe``) file was missing and nothing was moved."""
    attempts: int = 0
    seconds: float = 0.0
