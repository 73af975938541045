"""``osdf://`` and ``pelican://`` through the Pelican client library, pelicanfs.

``pelican://HOST/path`` names an object of the federation whose discovery
document is at ``https://HOST/.well-known/pelican-configuration``;
``osdf:///path`` is the same through the OSDF federation, which is
configurable (``federation``) so a site or a test can use its own. pelicanfs
asks the director where to read (a cache, or the origin) and where to write
(the origin). Uploads are verified by reading the object back from the origin
itself (``direct_reads``): a cache may still hold an older object of that name.

A token, when given, goes in the ``Authorization`` header of every request;
401/403 become a :class:`TransferCredentialsError` (not retried: a new try
sends the same token), which the pilot reports as a ``credentials`` failure.
"""
from __future__ import annotations

import asyncio
import hashlib
import ssl
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

from common.transfer.errors import TransferCredentialsError, TransferError, TransferNotFound
from common.transfer.registry import Expected

PUBLIC_OSDF = "pelican://osg-htc.org"


def pelican_url(url: str, federation: str = PUBLIC_OSDF) -> str:
    """``osdf:///path`` → ``pelican://<federation host>/path``; ``pelican://`` URLs unchanged."""
    parts = urlsplit(url)
    if parts.scheme == "pelican":
        if not parts.netloc:
            raise TransferError(url, "pelican:// URL without a federation host", retryable=False)
        return url
    if parts.scheme != "osdf":
        raise TransferError(url, "not an osdf:// or pelican:// URL", retryable=False)
    host = urlsplit(federation).netloc or federation.split("://")[-1].strip("/")
    # osdf://host/path is read as the path /host/path, as pelicanfs and the pelican CLI do.
    path = "/" + "/".join(p for p in (parts.netloc + parts.path).split("/") if p)
    if path == "/":
        raise TransferError(url, "osdf:// URL without an object path", retryable=False)
    return f"pelican://{host}{path}"


@dataclass
class PelicanFiles:
    """Transfers through a Pelican federation; one instance per attempt when tokens differ."""

    federation: str = PUBLIC_OSDF
    """Where ``osdf:///`` URLs go (``pelican://host``)."""
    token: str | None = None
    ca_file: str | None = None
    """An extra CA to trust (a local federation's); the system CAs are always trusted."""
    ca_pem: str | None = None
    """The same as PEM text (as the claim reply carries it)."""
    timeout: float = 300.0
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def _ssl(self) -> ssl.SSLContext:
        """One context per instance: loading the system CAs costs ~10 ms of CPU."""
        with self._lock:
            if "ssl" not in self._cache:
                self._cache["ssl"] = self._new_ssl()
            return self._cache["ssl"]

    def _new_ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(self.ca_file)
        if self.ca_pem:
            context.load_verify_locations(cadata=self.ca_pem)
        return context

    def _fs(self, url: str, *, direct_reads: bool = False) -> Any:
        """The pelicanfs file system for ``url``'s federation, kept for the instance's life so
        discovery, the director's answers and the HTTP connections are reused."""
        key = (urlsplit(pelican_url(url, self.federation)).netloc, direct_reads)
        with self._lock:
            found = self._cache.get(key)
        if found is None:
            found = self._new_fs(url, direct_reads=direct_reads)
            with self._lock:
                found = self._cache.setdefault(key, found)
        return found

    def _new_fs(self, url: str, *, direct_reads: bool = False) -> Any:
        try:
            import aiohttp
            from pelicanfs.core import PelicanFileSystem, get_webdav_client
        except ImportError:
            raise TransferError(url, "osdf:// and pelican:// need the pelicanfs package "
                                     "(pip install pelicanfs)", retryable=False) from None
        context = self._ssl()
        timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=30)

        async def get_client(**kwargs: Any) -> aiohttp.ClientSession:
            kwargs.pop("loop", None)
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context),
                                         timeout=timeout, **kwargs)

        @asynccontextmanager
        async def webdav_client(options: dict[str, Any]) -> AsyncIterator[Any]:
            async with get_webdav_client({**options, "verify_ssl": context}) as client:
                yield client

        host = urlsplit(pelican_url(url, self.federation)).netloc
        # The token is for the configured federation only: a pelican:// URL naming another
        # federation must not receive it.
        mine = host == urlsplit(pelican_url("osdf:///x", self.federation)).netloc
        headers = {"Authorization": f"Bearer {self.token}"} if self.token and mine else {}
        discovery = f"pelican://{host}/"
        return PelicanFileSystem(discovery, direct_reads=direct_reads, headers=headers,
                                 get_client=get_client, get_webdav_client=webdav_client,
                                 skip_instance_cache=True)

    def _probe(self, fs: Any, url: str) -> int | None:
        """The status the first server the director names gives this object (HEAD), or None.

        pelicanfs treats a cache that refuses a HEAD as broken and reports "no
        available source"; asking once more tells a refused token apart.
        """
        import aiohttp
        from fsspec.asyn import sync
        from pelicanfs.dir_header_parser import parse_director_response

        async def head() -> int | None:
            path = urlsplit(pelican_url(url, self.federation)).path
            servers = parse_director_response(await fs.get_director_headers(path)).object_servers
            if not servers:
                return None
            session = await fs.http_file_system.set_session()
            async with session.head(servers[0], headers=fs.http_file_system.kwargs.get("headers"),
                                    timeout=aiohttp.ClientTimeout(total=30)) as resp:
                return resp.status

        try:
            return sync(fs.loop, head)
        except Exception:  # the probe only refines the message; its own failure changes nothing
            return None

    def _raise_if_refused(self, fs: Any, url: str, verb: str) -> None:
        """pelicanfs hides a 401/403 behind 'not found' or 'no source': ask the origin which it was."""
        status = self._probe(fs, url) if fs is not None else None
        if status in (401, 403):
            raise TransferCredentialsError(url, f"HTTP {status} on {verb}: {self._refusal(url, status, verb)}")

    def _run(self, url: str, verb: str, call: Any, fs: Any = None) -> Any:
        """Run one pelicanfs call and turn its failures into transfer errors."""
        import aiohttp
        from pelicanfs.exceptions import BadDirectorResponse, InvalidMetadata, NoAvailableSource
        try:
            return call()
        except FileNotFoundError:
            # fsspec reports any refused read of an object's metadata as "not found"
            self._raise_if_refused(fs, url, verb)
            raise TransferNotFound(url, f"no such object ({verb})") from None
        except aiohttp.ClientResponseError as exc:
            if exc.status in (401, 403):
                raise TransferCredentialsError(
                    url, f"HTTP {exc.status} on {verb}: {self._refusal(url, exc.status, verb)}") from None
            retryable = exc.status >= 500 or exc.status in (408, 425, 429)
            raise TransferError(url, f"HTTP {exc.status} on {verb}", retryable=retryable) from None
        except (InvalidMetadata, BadDirectorResponse) as exc:
            raise TransferError(url, f"cannot contact pelican director: {type(exc).__name__}") from None
        except NoAvailableSource:
            self._raise_if_refused(fs, url, verb)
            raise TransferError(url, f"the director named no cache or origin for it ({verb})") from None
        except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ssl.SSLError) as exc:
            raise TransferError(url, f"cannot contact pelican director or origin: "
                                     f"{type(exc).__name__}: {exc}") from None

    def _refusal(self, url: str, status: int, verb: str) -> str:
        """What the origin said about a refused token (it names the missing scope)."""
        if not self.token:
            return "no token for this namespace"
        need = "storage.modify" if verb == "PUT" else "storage.read"
        return f"the token does not grant {need} for {urlsplit(pelican_url(url, self.federation)).path}"

    def download(self, url: str, target: Path) -> Expected:
        fs = self._fs(url)
        self._run(url, "GET", lambda: fs.get_file(pelican_url(url, self.federation), str(target)), fs)
        return Expected()

    def upload(self, source: Path, url: str) -> None:
        fs = self._fs(url)
        self._run(url, "PUT", lambda: fs.put_file(str(source), pelican_url(url, self.federation)))

    def checksum(self, url: str) -> Expected:
        fs = self._fs(url, direct_reads=True)
        digest = hashlib.sha512()
        size = 0

        def read_back() -> None:
            nonlocal size
            with fs.open(pelican_url(url, self.federation), "rb", block_size=1 << 20) as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
                    size += len(block)

        try:
            self._run(url, "GET", read_back, fs)
        except TransferNotFound:
            raise TransferError(url, "missing at the origin after upload") from None
        return Expected(size=size, sha512=digest.hexdigest())
