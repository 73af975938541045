"""Application keys of the credential cipher and the claim path's storage tokens and
the website's pending device-code flows (built in ``create_app``)."""
from __future__ import annotations

from aiohttp import web

from server.credentials.cipher import SecretCipher
from server.credentials.device import DeviceFlows
from server.credentials.tokens import StorageTokens

CIPHER: web.AppKey[SecretCipher] = web.AppKey("credentials_cipher", SecretCipher)
STORAGE_TOKENS: web.AppKey[StorageTokens] = web.AppKey("storage_tokens", StorageTokens)
DEVICE_FLOWS: web.AppKey[DeviceFlows] = web.AppKey("device_flows", DeviceFlows)
