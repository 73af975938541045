"""OIDC device-code flow (RFC 8628) for adding a credential from the website.

The user names an issuer; the server asks its ``device_authorization_endpoint``
for a code, shows the user where to approve it, and once approved polls the
token endpoint and stores the tokens like a pasted credential. The pending
flows (their device codes) stay in this server's memory, bound to the user
who started them, for at most their ``expires_in``.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MAX_PENDING = 1000


class DeviceFlowError(Exception):
    """The issuer cannot do the flow, refused it, or the flow expired; the message says which."""


@dataclass
class PendingFlow:
    username: str
    owner_kind: str
    owner: str
    url: str
    issuer: str
    token_endpoint: str
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    expires: float
    client: dict[str, str] = field(repr=False, default_factory=dict)


@dataclass
class DeviceFlows:
    token_clients: dict[str, Any]
    timeout: float = 30.0
    pending: dict[str, PendingFlow] = field(default_factory=dict)

    def _client(self, issuer: str) -> dict[str, str]:
        client = self.token_clients.get(issuer) or {}
        found = {k: client[k] for k in ("client_id", "client_secret") if isinstance(client.get(k), str)}
        found.setdefault("client_id", "frazil")
        return found

    async def start(self, *, username: str, owner_kind: str, owner: str, url: str, issuer: str,
                    scope: str) -> tuple[str, PendingFlow]:
        """Ask the issuer for a device code; (flow id, the flow)."""
        if not issuer.startswith(("http://", "https://")):
            raise DeviceFlowError("the issuer must be an http(s):// URL")
        client = self._client(issuer)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                async with session.get(issuer.rstrip("/") + "/.well-known/openid-configuration") as resp:
                    resp.raise_for_status()
                    config = await resp.json(content_type=None)
                endpoint = config.get("device_authorization_endpoint") if isinstance(config, dict) else None
                if not isinstance(endpoint, str) or not endpoint:
                    raise DeviceFlowError("this issuer has no device-code flow: paste a token instead")
                async with session.post(endpoint, data={**client, "scope": scope}) as resp:
                    answer = await resp.json(content_type=None)
                    if resp.status != 200 or not isinstance(answer, dict) or "device_code" not in answer:
                        raise DeviceFlowError(f"the issuer refused the device-code request (HTTP {resp.status})")
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise DeviceFlowError(f"cannot reach the issuer: {type(exc).__name__}") from None
        self._forget_expired()
        if len(self.pending) >= MAX_PENDING:
            raise DeviceFlowError("too many device-code flows are pending; try again later")
        flow = PendingFlow(username=username, owner_kind=owner_kind, owner=owner, url=url, issuer=issuer,
                           token_endpoint=str(config.get("token_endpoint", "")),
                           device_code=str(answer["device_code"]), user_code=str(answer.get("user_code", "")),
                           verification_uri=str(answer.get("verification_uri_complete")
                                                or answer.get("verification_uri", "")),
                           expires=time.time() + float(answer.get("expires_in", 600)), client=client)
        flow_id = secrets.token_urlsafe(16)
        self.pending[flow_id] = flow
        return flow_id, flow

    def _forget_expired(self) -> None:
        now = time.time()
        for flow_id in [k for k, f in self.pending.items() if f.expires < now]:
            del self.pending[flow_id]

    def get(self, flow_id: str, username: str) -> PendingFlow:
        self._forget_expired()
        flow = self.pending.get(flow_id)
        if flow is None or flow.username != username:
            raise DeviceFlowError("no such device-code flow (it may have expired): start again")
        return flow

    async def poll(self, flow_id: str, username: str) -> dict[str, Any] | None:
        """The issuer's token answer once approved; None while approval is pending."""
        flow = self.get(flow_id, username)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                async with session.post(flow.token_endpoint, data={
                        **flow.client, "grant_type": DEVICE_GRANT, "device_code": flow.device_code}) as resp:
                    answer = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise DeviceFlowError(f"cannot reach the issuer: {type(exc).__name__}") from None
        if not isinstance(answer, dict):
            raise DeviceFlowError("the issuer's answer is not a JSON object")
        error = answer.get("error")
        if error in ("authorization_pending", "slow_down"):
            return None
        if error or "access_token" not in answer:
            self.pending.pop(flow_id, None)
            raise DeviceFlowError(f"the issuer ended the flow: {error if isinstance(error, str) else 'no token'}")
        self.pending.pop(flow_id, None)
        return answer
