"""A federation (director + origin) and a token issuer on 127.0.0.1 for each test."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from common.transfer.pelican import PelicanFiles
from server.federation.issuer import Issuer, serve_issuer
from server.federation.service import Federation

NAMESPACE = "/icecube/wipac"


@dataclass
class Secured:
    federation: Federation
    issuer: Issuer

    def files(self, scope: str | None, lifetime: int | None = None) -> PelicanFiles:
        token = self.issuer.mint(scope, lifetime=lifetime) if scope is not None else None
        return PelicanFiles(federation=self.federation.url, token=token,
                            ca_file=self.federation.ca_file)


@pytest.fixture
async def public_federation(tmp_path: Path):
    async with Federation(tmp_path / "origin", namespaces=[NAMESPACE]) as federation:
        yield federation


@pytest.fixture
async def issuer():
    issuer, runner = await serve_issuer()
    try:
        yield issuer
    finally:
        await runner.cleanup()


@pytest.fixture
async def secured(tmp_path: Path, issuer: Issuer):
    async with Federation(tmp_path / "origin", namespaces=[NAMESPACE], issuer=issuer.url) as federation:
        yield Secured(federation, issuer)
