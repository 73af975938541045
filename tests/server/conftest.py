"""A real frazil server on 127.0.0.1 with a real SQLite store, for API tests.

``server`` runs in the test's event loop; ``rest(token)`` gives a
wipac-rest-tools ``RestClient`` — the client IceProd scripts use — pointed at
it, with retries off so a test sees each answer as it is.
"""
from __future__ import annotations

import pathlib
import socket
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Iterable

import pytest
from aiohttp import web
from rest_tools.client import RestClient

from server.app import create_app
from server.keys import TOKENS
from server.settings import Settings
from server.store import Store, open_store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    app: web.Application
    store: Store
    settings: Settings
    clients: list[RestClient] = field(default_factory=list)

    def token(self, username: str = "alice", role: str = "user", groups: Iterable[str] = ("users",)) -> str:
        return self.app[TOKENS].create(username, role=role, groups=list(groups))

    def rest(self, token: str | None = None) -> RestClient:
        client = RestClient(self.url, token, timeout=30, retries=0)
        self.clients.append(client)
        return client


async def start_server(settings: Settings, store: Store, **app_kwargs) -> tuple[web.AppRunner, RunningServer]:
    app = create_app(settings, store=store, **app_kwargs)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.port)
    await site.start()
    return runner, RunningServer(url=f"http://127.0.0.1:{settings.port}", app=app, store=store, settings=settings)


@pytest.fixture
async def store(tmp_path: pathlib.Path) -> AsyncIterator[Store]:
    """A SQLite store of its own, for tests of services without a server."""
    opened = await open_store(f"sqlite:///{tmp_path}/frazil.db")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def server_settings(tmp_path) -> Settings:
    """Settings for a test server: its own data dir, no background loops and no
    pilot provider unless a test turns them on."""
    return Settings(db=f"sqlite:///{tmp_path}/frazil.db", data_dir=str(tmp_path / "data"), port=free_port(),
                    provider="none", loops=False, retry_delay_seconds=0)


@pytest.fixture
async def server(server_settings: Settings) -> AsyncIterator[RunningServer]:
    store = await open_store(server_settings.db)
    runner, running = await start_server(server_settings, store)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        await runner.cleanup()
        await store.close()


@pytest.fixture
def rest(server: RunningServer) -> Callable[[str | None], RestClient]:
    return server.rest
