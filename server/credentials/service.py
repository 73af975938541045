"""Credentials as the API, the website and the loops use them.

Bodies follow IceProd's credentials service (reference §4.5): ``url``,
``type`` (``oauth`` | ``s3``), ``transfer_prefix``, ``scope``,
``access_token``, ``refresh_token``, ``expiration`` (or the older
``expire_date``), ``buckets``, ``access_key``, ``secret_key``. Validation
messages name the field, never its value: a secret must not come back in an
error either.
"""
from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from server.credentials.cipher import SECRET_FIELDS, CipherError, SecretCipher
from server.store import Credential, Store, nowstr

log = logging.getLogger("frazil.credentials")
PUBLIC_FIELDS = ("url", "type", "transfer_prefix", "scope", "expiration", "expire_date", "buckets")
KNOWN_FIELDS = frozenset(PUBLIC_FIELDS + SECRET_FIELDS + ("last_use",))
MAX_FIELD = 16_384


class CredentialInputError(ValueError):
    """A body that cannot be stored; the message names the field only."""


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise CredentialInputError(f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise CredentialInputError(f"{name} must be a string")
    if len(value) > MAX_FIELD or any(ord(c) < 32 for c in value):
        raise CredentialInputError(f"{name} is too long or has control characters")
    return value


def _expiration(body: dict[str, Any]) -> float | None:
    for name in ("expiration", "expire_date"):
        value = body.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            raise CredentialInputError(f"{name} must be epoch seconds or an ISO date")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise CredentialInputError(f"{name} must be epoch seconds or an ISO date") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.timezone.utc)
            return when.timestamp()
        raise CredentialInputError(f"{name} must be epoch seconds or an ISO date")
    return None


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT access token, unverified (for expiry, scope and issuer only)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def public_doc(credential: Credential) -> dict[str, Any]:
    """The API's and the website's view: no secret, ever."""
    doc = credential.to_doc()
    doc["expire_date"] = credential.expiration
    doc["state"] = ("refresh failed" if credential.refresh_error
                    else "expired" if credential.expiration is not None and credential.expiration < time.time()
                    else "valid")
    return doc


@dataclass
class CredentialService:
    store: Store
    cipher: SecretCipher
    token_clients: dict[str, Any]
    """IceProd's TOKEN_CLIENTS: {issuer URL: {"client_id": ..., "client_secret": ...}}."""
    timeout: float = 30.0

    def build(self, owner_kind: str, owner: str, body: Any, previous: Credential | None = None) -> Credential:
        """A credential from an API body (``previous``: a PATCH keeps what the body leaves out)."""
        if not isinstance(body, dict):
            raise CredentialInputError("the body must be a JSON object")
        unknown = sorted(set(body) - KNOWN_FIELDS)
        if unknown:
            raise CredentialInputError(f"unknown field {unknown[0]!r}")
        old = self.cipher.open(previous.secret) if previous else {}
        merged_secrets = {**old, **{k: _text(body, k) for k in SECRET_FIELDS if k in body}}
        url = _text(body, "url", required=previous is None) or (previous.url if previous else "")
        kind = _text(body, "type", required=previous is None) or (previous.type if previous else "")
        if kind not in ("oauth", "s3"):
            raise CredentialInputError("type must be oauth or s3")
        buckets = body.get("buckets", previous.buckets if previous else [])
        if not isinstance(buckets, list) or not all(isinstance(b, str) and b for b in buckets):
            raise CredentialInputError("buckets must be a list of strings")
        expiration = _expiration(body)
        scope = _text(body, "scope") or (previous.scope if previous else "")
        refreshable = False
        if kind == "oauth":
            access = merged_secrets.get("access_token", "")
            if not access:
                raise CredentialInputError("access_token is required for an oauth credential")
            claims = token_claims(access)
            if expiration is None and "access_token" in body and isinstance(claims.get("exp"), (int, float)):
                expiration = float(claims["exp"])
            scope = scope or str(claims.get("scope", ""))
            refreshable = bool(merged_secrets.get("refresh_token")) and bool(claims.get("iss"))
        else:
            if not (merged_secrets.get("access_key") and merged_secrets.get("secret_key")):
                raise CredentialInputError("access_key and secret_key are required for an s3 credential")
        if expiration is None and previous is not None and "access_token" not in body:
            expiration = previous.expiration
        return Credential(owner_kind=owner_kind, owner=owner, url=url, type=kind,
                          secret=self.cipher.seal(merged_secrets),
                          transfer_prefix=_text(body, "transfer_prefix") or (previous.transfer_prefix
                                                                             if previous else url),
                          scope=scope, buckets=list(buckets), expiration=expiration, refreshable=refreshable,
                          last_use=previous.last_use if previous else None,
                          last_refresh=previous.last_refresh if previous else None,
                          created=previous.created if previous else nowstr())

    async def put(self, owner_kind: str, owner: str, body: Any) -> dict[str, Any]:
        credential = self.build(owner_kind, owner, body)
        await self.store.put_credential(credential)
        return public_doc(credential)

    async def patch(self, owner_kind: str, owner: str, body: Any) -> dict[str, Any] | None:
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise CredentialInputError("url is required to name the credential to change")
        previous = await self.store.get_credential(owner_kind, owner, body["url"])
        if previous is None:
            return None
        credential = self.build(owner_kind, owner, body, previous)
        await self.store.put_credential(credential)
        return public_doc(credential)

    async def list(self, owner_kind: str, owners: list[str], *, url: str | None = None,
                   transfer_prefix: str | None = None, scope: str | None = None,
                   refresh_before: float | None = None) -> list[dict[str, Any]]:
        """IceProd's listing filters: exact ``url`` and ``transfer_prefix``; ``scope``: every
        scope named is among the credential's. As IceProd's listing, refreshable credentials
        expiring before ``refresh_before`` (epoch s; None: no refresh) are refreshed first."""
        found = await self.store.list_credentials(owner_kind, owners)
        due = [c for c in found if refresh_before is not None and c.refreshable and c.expiration is not None
               and c.expiration < refresh_before and (url is None or c.url == url)]
        if due:
            for credential in due:
                await self.refresh(credential)
            found = await self.store.list_credentials(owner_kind, owners)
        wanted = set(scope.split()) if scope else set()
        return [public_doc(c) for c in found
                if (url is None or c.url == url) and (transfer_prefix is None or c.transfer_prefix == transfer_prefix)
                and wanted <= set(c.scope.split())]

    def secrets_of(self, credential: Credential) -> dict[str, str]:
        return self.cipher.open(credential.secret)

    # ------------------------------------------------------------ the issuer

    async def _token_endpoint(self, session: aiohttp.ClientSession, issuer: str) -> str:
        async with session.get(issuer.rstrip("/") + "/.well-known/openid-configuration") as resp:
            resp.raise_for_status()
            endpoint = (await resp.json(content_type=None)).get("token_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise ValueError("the issuer publishes no token_endpoint")
        return endpoint

    async def _grant(self, issuer: str, form: dict[str, str]) -> dict[str, Any]:
        client = self.token_clients.get(issuer) or {}
        for name in ("client_id", "client_secret"):
            if isinstance(client.get(name), str):
                form[name] = client[name]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
            endpoint = await self._token_endpoint(session, issuer)
            async with session.post(endpoint, data=form) as resp:
                answer = await resp.json(content_type=None)
                if resp.status != 200 or not isinstance(answer, dict) or "access_token" not in answer:
                    error = answer.get("error") if isinstance(answer, dict) else None
                    raise ValueError(f"the token endpoint answered HTTP {resp.status}"
                                     + (f" ({error})" if isinstance(error, str) else ""))
        return answer

    async def refresh(self, credential: Credential) -> bool:
        """Refresh one OAuth credential at its issuer; the outcome is stored either way."""
        now = time.time()
        try:
            secrets = self.cipher.open(credential.secret)
            issuer = str(token_claims(secrets.get("access_token", "")).get("iss", ""))
            if not issuer.startswith(("http://", "https://")):
                raise ValueError("the access token names no issuer")
            answer = await self._grant(issuer, {"grant_type": "refresh_token",
                                                "refresh_token": secrets.get("refresh_token", "")})
        except (CipherError, ValueError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = f"refresh failed: {type(exc).__name__}: {exc}"[:300]
            await self.store.record_refresh(credential, secret=None, expiration=None, when=now, error=reason)
            log.warning("credential refresh failed", extra={"owner_kind": credential.owner_kind,
                                                            "owner": credential.owner, "url": credential.url,
                                                            "reason": reason})
            return False
        secrets["access_token"] = str(answer["access_token"])
        if isinstance(answer.get("refresh_token"), str):
            secrets["refresh_token"] = answer["refresh_token"]
        expires = token_claims(secrets["access_token"]).get("exp")
        if not isinstance(expires, (int, float)):
            expires_in = answer.get("expires_in")
            expires = now + float(expires_in) if isinstance(expires_in, (int, float)) else None
        return await self.store.record_refresh(credential, secret=self.cipher.seal(secrets),
                                               expiration=float(expires) if expires is not None else None,
                                               when=now)

    async def exchange(self, access_token: str, scope: str) -> str | None:
        """A token narrowed to ``scope`` by RFC 8693 token exchange, or None where the
        issuer does not do it (the caller then uses the stored token: docs/operators.md)."""
        issuer = str(token_claims(access_token).get("iss", ""))
        if not issuer.startswith(("http://", "https://")) or not scope:
            return None
        try:
            answer = await self._grant(issuer, {
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": access_token,
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "scope": scope})
        except (ValueError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("token exchange not available", extra={"issuer": issuer, "reason": type(exc).__name__})
            return None
        return str(answer["access_token"])
