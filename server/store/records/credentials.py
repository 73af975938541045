"""Stored credentials (IceProd's credentials service, reference §4.5).

The secret part (access/refresh token, S3 keys) is an opaque, already
encrypted string here: the store never sees a plaintext secret, and
``to_doc()`` never includes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import JsonDict

OWNER_KINDS = ("user", "group", "dataset", "task")
"""``task`` owners are ``<dataset_id>/<task name>`` (IceProd 3.2's per-task credentials)."""
CREDENTIAL_TYPES = ("oauth", "s3")


@dataclass
class Credential:
    owner_kind: str
    owner: str
    url: str
    """The storage (or issuer) URL the credential is for; with the owner, its key."""
    type: str
    secret: str = field(repr=False)
    """Encrypted JSON of the secret fields (a Fernet token); opaque to the store."""
    transfer_prefix: str = ""
    scope: str = ""
    buckets: list[str] = field(default_factory=list)
    expiration: float | None = None
    """Epoch seconds the access token expires at (None: unknown or never)."""
    refreshable: bool = False
    """An OAuth credential with a refresh token and a token endpoint."""
    last_use: float | None = None
    last_refresh: float | None = None
    refresh_error: str = ""
    """Why the last refresh failed (empty when it worked); shown to the owner."""
    created: str = ""

    def to_doc(self) -> JsonDict:
        """What the API and website may show: everything but the secret."""
        return {"owner_kind": self.owner_kind, "owner": self.owner, "url": self.url, "type": self.type,
                "transfer_prefix": self.transfer_prefix, "scope": self.scope, "buckets": list(self.buckets),
                "expiration": self.expiration, "refreshable": self.refreshable, "last_use": self.last_use,
                "last_refresh": self.last_refresh, "refresh_error": self.refresh_error,
                "created": self.created}
