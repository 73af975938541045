"""File transfer by URL scheme, with verification, retries and atomic placement.

``transfer_in(url, dest)`` and ``transfer_out(src, url)`` work for plain
absolute paths, ``file://``, ``http(s)://``, ``ftp://``, ``gsiftp://``, ``osdf://`` and
``pelican://``; more schemes plug in through
``register_scheme``. Every failure is a :class:`TransferError` naming the URL.
"""
from __future__ import annotations

from common.transfer.checksum import sha512_file
from common.transfer.errors import TransferCredentialsError, TransferError, TransferNotFound, TransferRecord
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

# osdf:// and pelican:// need pelicanfs at transfer time; anonymous, the public OSDF for osdf:///.
# The pilot passes each attempt its own handler (federation, token) through ``schemes=``.
from common.transfer.pelican import PelicanFiles  # noqa: E402

register_scheme(["osdf", "pelican"], PelicanFiles())

__all__ = [
    "DEFAULT_RETRY", "Expected", "GridFtpFiles", "HttpFiles", "LocalFiles", "PelicanFiles", "RetryPolicy",
    "Scheme", "TransferCredentialsError", "TransferError", "TransferNotFound", "TransferRecord", "register_scheme",
    "registered_schemes", "scheme_for", "sha512_file", "transfer_in", "transfer_out",
    "unregister_scheme",
]
