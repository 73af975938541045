"""An attempt's own handlers for osdf://, pelican:// and file://, from its claim reply.

The claim says which federation ``osdf:///`` means (``osdf_federation``), may
add a CA to trust (``pelican_ca``) and carries the attempt's storage token
(``storage_token``). The handler lives as long as the attempt: the token is
never written to disk or put in the task's environment.
"""
from __future__ import annotations

from typing import Any

from common.transfer import Scheme
from common.transfer.local import LocalFiles
from common.transfer.pelican import PUBLIC_OSDF, PelicanFiles


def pelican_schemes(doc: dict[str, Any]) -> dict[str, Scheme]:
    federation = doc.get("osdf_federation")
    token = doc.get("storage_token")
    ca = doc.get("pelican_ca")
    files = PelicanFiles(federation=federation if isinstance(federation, str) and federation else PUBLIC_OSDF,
                         token=token if isinstance(token, str) and token else None,
                         ca_pem=ca if isinstance(ca, str) and ca else None)
    return {"osdf": files, "pelican": files}


def file_schemes(doc: dict[str, Any]) -> dict[str, Scheme]:
    """``file://`` outputs confined to the claim's ``file_roots`` less its
    ``file_denied`` (common/transfer/local.py); a claim that names no roots
    allows no file:// output."""
    roots = doc.get("file_roots")
    denied = doc.get("file_denied")
    files = LocalFiles(roots=[r for r in roots if isinstance(r, str) and r.startswith("/")]
                       if isinstance(roots, list) else [],
                       denied=[d for d in denied if isinstance(d, str)] if isinstance(denied, list) else [])
    return {"file": files}
