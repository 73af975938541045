"""The pilot's HTTP client for the server's pilot routes (docs/pilot-api.md).

aiohttp, one keep-alive session for the pilot's life: a claim → report cycle
costs a few milliseconds on a local server, which is most of the per-task
overhead budget. Every answer comes back as a :class:`Reply` — the pilot
decides what a 404 or 409 means in its context — except "the server is not
there" (connection refused, timeout, 502/503/504), which raises
:class:`Unreachable` so callers can spool and retry later.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import aiohttp

from common.protocol import Reason

GATEWAY_STATUSES = frozenset({502, 503, 504})


class Unreachable(Exception):
    """The server could not be reached (or a proxy in front of it said so)."""


@dataclass
class Reply:
    status: int
    data: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> str:
        if isinstance(self.data, dict) and isinstance(self.data.get("error"), str):
            return self.data["error"]
        return f"HTTP {self.status}"

    @property
    def reason(self) -> Reason | None:
        """The machine-readable reason of an error (common.protocol.Reason), if it has one
        the pilot knows: what the pilot acts on, never the message text."""
        if isinstance(self.data, dict) and isinstance(self.data.get("reason"), str):
            try:
                return Reason(self.data["reason"])
            except ValueError:
                return None
        return None

    def retry_after(self, default: float) -> float:
        try:
            return max(float(self.headers.get("Retry-After", default)), 0.0)
        except ValueError:
            return default


class ServerApi:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0))
        self._session: aiohttp.ClientSession | None = None

    async def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, json_serialize=json.dumps)
        return self._session

    def use_token(self, token: str) -> None:
        """From the next call on, send ``token`` (the registration's, then each
        heartbeat's renewal): a call in flight keeps the one it started with."""
        self._headers = {"Authorization": f"Bearer {token}"}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, path: str, body: Any = None) -> Reply:
        session = await self._open()
        try:
            async with session.request(method, self.url + path, json=body, headers=self._headers) as response:
                text = await response.text()
                status, headers = response.status, dict(response.headers)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError, aiohttp.ClientPayloadError) as exc:
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if status in GATEWAY_STATUSES:
            raise Unreachable(f"{method} {path}: HTTP {status}")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = text
        return Reply(status, data, headers)
