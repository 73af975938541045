"""The application key of the credential cipher (built once in ``create_app``)."""
from __future__ import annotations

from aiohttp import web

from server.credentials.cipher import SecretCipher

CIPHER: web.AppKey[SecretCipher] = web.AppKey("credentials_cipher", SecretCipher)
