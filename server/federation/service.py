"""Start the director and the origin together (``frazil federation`` and the tests)."""
from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from server.federation.director import DirectorConfig, make_director_app
from server.federation.namespaces import Namespaces, normalize_prefix
from server.federation.origin import make_origin_app
from server.federation.tls import TlsFiles, ensure_tls
from server.federation.tokens import TokenChecker

HOST = "127.0.0.1"


@dataclass
class Federation:
    """A director (``port``) and an origin (``origin_port``) on 127.0.0.1; 0 picks free ports."""

    root: Path
    port: int = 0
    origin_port: int = 0
    namespaces: list[str] = field(default_factory=lambda: ["/"])
    issuer: str | None = None
    issuer_ca_file: str | None = None
    """CA bundle to trust for the issuer's HTTPS endpoints (system CAs otherwise)."""
    tls_dir: Path | None = None
    tls: TlsFiles | None = None
    url: str = ""
    """The federation URL: ``pelican://127.0.0.1:PORT/path`` names objects in it."""
    director_url: str = ""
    origin_url: str = ""
    _runners: list[web.AppRunner] = field(default_factory=list)

    @property
    def ca_file(self) -> str:
        assert self.tls is not None, "start() first"
        return str(self.tls.ca_cert)

    async def start(self) -> "Federation":
        self.root = Path(self.root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        tls_dir = Path(self.tls_dir or self.root / ".frazil-federation-tls").resolve()
        self.tls = ensure_tls(tls_dir)
        context = self.tls.server_context()
        spaces = Namespaces(self.root, tuple(sorted({normalize_prefix(p) for p in self.namespaces})))
        checker = None
        if self.issuer:
            issuer_ssl: ssl.SSLContext | bool = True
            if self.issuer_ca_file:
                issuer_ssl = ssl.create_default_context(cafile=self.issuer_ca_file)
            checker = TokenChecker(self.issuer, [], issuer_ssl)
        config = DirectorConfig("", "", spaces, self.issuer)
        try:
            origin_port = await self._serve(make_origin_app(spaces, checker, hidden=(tls_dir,)),
                                            self.origin_port, context)
            self.origin_url = config.origin_url = f"https://{HOST}:{origin_port}"
            if checker is not None:
                checker.audiences.append(self.origin_url)  # a token may name this origin as audience
            port = await self._serve(make_director_app(config), self.port, context)
        except BaseException:
            await self.stop()
            raise
        self.director_url = config.director_url = f"https://{HOST}:{port}"
        self.url = f"pelican://{HOST}:{port}"
        return self

    async def _serve(self, app: web.Application, port: int, context: ssl.SSLContext) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, HOST, port, ssl_context=context)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # noqa: SLF001 (port 0 → the chosen one)

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> "Federation":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
