"""common.transfer with real files and a real aiohttp HTTP server."""
from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from aiohttp import web

from common.transfer import (
    Expected,
    RetryPolicy,
    TransferError,
    TransferNotFound,
    register_scheme,
    sha512_file,
    transfer_in,
    transfer_out,
    unregister_scheme,
)

FAST = RetryPolicy(attempts=3, delay=0.001)


@pytest.fixture(autouse=True)
def _forget_test_scheme():
    yield
    unregister_scheme("flaky")


def _sha(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".part-" in p.name]


def test_sha512_file_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # spans several read blocks
    (tmp_path / "f").write_bytes(data)
    assert sha512_file(tmp_path / "f") == _sha(data)


def test_path_and_file_url_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "src.dat"
    source.write_bytes(b"payload\n" * 1000)
    record = transfer_in(str(source), tmp_path / "work" / "in.dat")
    assert record.ok and not record.skipped and record.direction == "in"
    assert record.size == 8000 and record.sha512 == _sha(source.read_bytes())
    assert (tmp_path / "work" / "in.dat").read_bytes() == source.read_bytes()

    out = transfer_out(tmp_path / "work" / "in.dat", f"file://{tmp_path}/store/deep/out.dat")
    assert out.ok and out.size == 8000 and out.sha512 == record.sha512
    assert (tmp_path / "store" / "deep" / "out.dat").read_bytes() == source.read_bytes()
    assert _leftovers(tmp_path / "work") == [] and _leftovers(tmp_path / "store" / "deep") == []


def test_missing_input_is_an_error_naming_the_url(tmp_path: Path) -> None:
    with pytest.raises(TransferNotFound) as info:
        transfer_in(str(tmp_path / "absent"), tmp_path / "x", retry=FAST)
    assert str(tmp_path / "absent") in str(info.value)
    assert info.value.url == str(tmp_path / "absent")
    assert not (tmp_path / "x").exists()


def test_maybe_input_and_output_are_skipped_when_missing(tmp_path: Path) -> None:
    rec_in = transfer_in(f"file://{tmp_path}/absent", tmp_path / "x", optional=True)
    assert rec_in.ok and rec_in.skipped and rec_in.size is None
    rec_out = transfer_out(tmp_path / "absent", f"{tmp_path}/dest", optional=True)
    assert rec_out.ok and rec_out.skipped
    assert not (tmp_path / "dest").exists()


def test_missing_required_output_fails(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="was not produced"):
        transfer_out(tmp_path / "absent", str(tmp_path / "dest"))


@pytest.mark.parametrize("url", ["relative/path", "osdf-nope://x/y", "", "file://otherhost/x"])
def test_bad_urls_are_refused_at_once(tmp_path: Path, url: str) -> None:
    with pytest.raises(TransferError) as info:
        transfer_in(url, tmp_path / "x", retry=RetryPolicy(attempts=5, delay=10))
    assert not info.value.retryable


class Flaky:
    """A scheme that fails (after writing half a file) a given number of times."""

    def __init__(self, failures: int, payload: bytes = b"0123456789") -> None:
        self.failures = failures
        self.calls = 0
        self.payload = payload
        self.stored: dict[str, bytes] = {}

    def download(self, url: str, target: Path) -> Expected:
        self.calls += 1
        target.write_bytes(self.payload[: len(self.payload) // 2])
        if self.calls <= self.failures:
            raise TransferError(url, "connection reset")
        target.write_bytes(self.payload)
        return Expected(size=len(self.payload))

    def upload(self, source: Path, url: str) -> None:
        self.calls += 1
        data = source.read_bytes()
        self.stored[url] = data if self.calls > self.failures else data[:1]

    def checksum(self, url: str) -> Expected:
        data = self.stored[url]
        return Expected(size=len(data), sha512=_sha(data))


def test_retries_then_success_leave_no_half_file(tmp_path: Path) -> None:
    scheme = Flaky(failures=2)
    register_scheme("flaky", scheme)
    record = transfer_in("flaky://host/file", tmp_path / "f", retry=FAST)
    assert record.attempts == 3 and scheme.calls == 3
    assert (tmp_path / "f").read_bytes() == b"0123456789"
    assert _leftovers(tmp_path) == []


def test_exhausted_retries_leave_nothing_that_looks_complete(tmp_path: Path) -> None:
    register_scheme("flaky", Flaky(failures=10))
    with pytest.raises(TransferError, match="connection reset") as info:
        transfer_in("flaky://host/file", tmp_path / "f", retry=FAST)
    assert info.value.url == "flaky://host/file"
    assert not (tmp_path / "f").exists() and _leftovers(tmp_path) == []


def test_upload_verified_at_destination(tmp_path: Path) -> None:
    (tmp_path / "out").write_bytes(b"result")
    scheme = Flaky(failures=1)  # the first upload arrives truncated: verification catches it
    register_scheme("flaky", scheme)
    record = transfer_out(tmp_path / "out", "flaky://h/out", retry=FAST)
    assert record.ok and record.attempts == 2 and scheme.stored["flaky://h/out"] == b"result"
    register_scheme("flaky", Flaky(failures=99))
    with pytest.raises(TransferError, match="size mismatch after upload"):
        transfer_out(tmp_path / "out", "flaky://h/out", retry=FAST)


class _Store:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/data/a.txt": b"alpha\n" * 100}
        self.failures_left = 1

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/redirect/{name}", self.redirect)
        app.router.add_get("/flaky", self.flaky)
        app.router.add_get("/{tail:.*}", self.get)
        app.router.add_put("/{tail:.*}", self.put)
        return app

    async def get(self, request: web.Request) -> web.Response:
        if request.path not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[request.path])

    async def put(self, request: web.Request) -> web.Response:
        self.files[request.path] = await request.read()
        return web.Response(status=201)

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/data/{request.match_info['name']}")

    async def flaky(self, request: web.Request) -> web.Response:
        if self.failures_left:
            self.failures_left -= 1
            raise web.HTTPServiceUnavailable()
        return web.Response(body=b"finally")


async def test_http_get_put_redirect_and_errors(tmp_path: Path, aiohttp_server) -> None:
    store = _Store()
    server = await aiohttp_server(store.app())
    base = f"http://127.0.0.1:{server.port}"

    rec = await asyncio.to_thread(transfer_in, f"{base}/redirect/a.txt", tmp_path / "a.txt")
    assert rec.ok and rec.size == 600 and (tmp_path / "a.txt").read_bytes() == b"alpha\n" * 100

    rec = await asyncio.to_thread(transfer_in, f"{base}/flaky", tmp_path / "f", retry=FAST)
    assert rec.attempts == 2 and (tmp_path / "f").read_bytes() == b"finally"

    with pytest.raises(TransferNotFound, match="HTTP 404"):
        await asyncio.to_thread(transfer_in, f"{base}/data/none", tmp_path / "n", retry=FAST)
    assert not (tmp_path / "n").exists() and _leftovers(tmp_path) == []
    skipped = await asyncio.to_thread(transfer_in, f"{base}/data/none", tmp_path / "n",
                                      optional=True)
    assert skipped.skipped

    (tmp_path / "up.bin").write_bytes(b"\x00\x01" * 5000)
    rec = await asyncio.to_thread(transfer_out, tmp_path / "up.bin", f"{base}/out/up.bin")
    assert rec.ok and rec.sha512 == _sha(b"\x00\x01" * 5000)
    assert store.files["/out/up.bin"] == b"\x00\x01" * 5000


async def test_http_unreachable_is_a_transfer_error(tmp_path: Path, unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/x"
    with pytest.raises(TransferError, match="curl error") as info:
        await asyncio.to_thread(transfer_in, url, tmp_path / "x", retry=FAST)
    assert info.value.url == url and not (tmp_path / "x").exists()
