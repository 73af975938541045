"""Encryption of credential secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The key is kept like the token signing key: a file under ``data_dir``
(``credentials.key``, setting ``credentials_key_file``), created owner-only on
first start. Losing it makes the stored secrets unreadable (users add them
again); it is never logged or served.
"""
from __future__ import annotations

import json
import os
import pathlib

from cryptography.fernet import Fernet, InvalidToken

SECRET_FIELDS = ("access_token", "refresh_token", "access_key", "secret_key")


class CipherError(Exception):
    """A stored secret cannot be decrypted (another key, or damaged)."""


def load_or_create_fernet_key(path: pathlib.Path) -> bytes:
    if path.exists():
        key = path.read_bytes().strip()
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(f"credentials key {path} is not a Fernet key; delete it to make a new one "
                             "(stored credentials must then be added again)") from None
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    return key


class SecretCipher:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secrets: dict[str, str]) -> str:
        """The secret fields, encrypted, as text."""
        plain = {k: v for k, v in secrets.items() if k in SECRET_FIELDS and v}
        return self._fernet.encrypt(json.dumps(plain).encode()).decode("ascii")

    def open(self, sealed: str) -> dict[str, str]:
        try:
            return json.loads(self._fernet.decrypt(sealed.encode("ascii")))
        except (InvalidToken, ValueError):
            raise CipherError("a stored credential cannot be decrypted with this server's key") from None

    def __repr__(self) -> str:  # never show key material, even in a debugger or a traceback
        return "SecretCipher(<key hidden>)"
