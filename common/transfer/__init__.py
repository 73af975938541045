"""File transfer by URL scheme, with verification, retries and atomic placement.

``transfer_in(url, dest)`` and ``transfer_out(src, url)`` work for plain
absolute paths, ``file://``, ``http(s)://``, ``ftp://`` and ``gsiftp://``; more schemes plug in through
``register_scheme``. Every failure is a :class:`TransferError` naming the URL.
"""
from __future__ import annotations

from common.transfer.checksum import sha512_file
from common.transfer.errors import TransferError, TransferNotFound, TransferRecord
from common.transfer.http import HttpFiles
from common.transfer.local import LocalFiles
from common.transfer.registry import (
    DEFAULT_RETRY,
    Expected,
    RetryPolicy,
    Scheme,
    register_scheme,
    registered_schemes,
    scheme_for,
    transfer_in,
    transfer_out,
    unregister_scheme,
)

register_scheme("file", LocalFiles())

register_scheme(["http", "https"], HttpFiles())

# ftp:// and gsiftp:// need globus-url-copy at transfer time (a clear error otherwise).
from common.transfer.gridftp import GridFtpFiles  # noqa: E402

register_scheme(["ftp", "gsiftp"], GridFtpFiles())

__all__ = [
    "DEFAULT_RETRY", "Expected", "GridFtpFiles", "HttpFiles", "LocalFiles", "RetryPolicy", "Scheme",
    "TransferError", "TransferNotFound", "TransferRecord", "register_scheme",
    "registered_schemes", "scheme_for", "sha512_file", "transfer_in", "transfer_out",
    "unregister_scheme",
]
