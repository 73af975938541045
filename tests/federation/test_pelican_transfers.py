"""osdf:// and pelican:// transfers: the real pelicanfs client against `frazil federation`."""
from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from common.transfer import RetryPolicy, TransferError, TransferNotFound, transfer_in, transfer_out
from common.transfer.errors import TransferCredentialsError
from common.transfer.pelican import PelicanFiles, pelican_url
from server.federation.issuer import Issuer
from server.federation.service import Federation
from tests.federation.conftest import NAMESPACE

ONCE = RetryPolicy(attempts=1)


def _file(path: Path, size: int) -> str:
    path.write_bytes(os.urandom(size))
    return hashlib.sha512(path.read_bytes()).hexdigest()


def test_osdf_urls_resolve_through_the_configured_federation():
    assert pelican_url("osdf:///icecube/wipac/a/b.i3", "pelican://127.0.0.1:8443") == \
        "pelican://127.0.0.1:8443/icecube/wipac/a/b.i3"
    assert pelican_url("osdf:///x") == "pelican://osg-htc.org/x"
    assert pelican_url("osdf://icecube/wipac/f", "pelican://h:1") == "pelican://h:1/icecube/wipac/f"
    assert pelican_url("pelican://other:9/ns/f", "pelican://h:1") == "pelican://other:9/ns/f"
    with pytest.raises(TransferError, match="without an object path"):
        pelican_url("osdf:///")


async def test_put_get_verify_public_namespace(public_federation, tmp_path):
    files = PelicanFiles(federation=public_federation.url, ca_file=public_federation.ca_file)
    source = tmp_path / "out.i3"
    digest = _file(source, 2_500_000)
    url = f"osdf://{NAMESPACE}/data/sim/1/out.i3"
    record = await asyncio.to_thread(transfer_out, source, url, retry=ONCE, schemes={"osdf": files})
    assert (record.ok, record.size, record.sha512) == (True, 2_500_000, digest)
    stored = public_federation.root / "icecube/wipac/data/sim/1/out.i3"
    assert hashlib.sha512(stored.read_bytes()).hexdigest() == digest
    # and back, by its pelican:// name
    back = tmp_path / "back.i3"
    purl = f"{public_federation.url}{NAMESPACE}/data/sim/1/out.i3"
    record = await asyncio.to_thread(transfer_in, purl, back, retry=ONCE, schemes={"pelican": files})
    assert record.sha512 == digest and back.read_bytes() == source.read_bytes()


async def test_missing_input_is_not_found_and_maybe_skips(public_federation, tmp_path):
    files = PelicanFiles(federation=public_federation.url, ca_file=public_federation.ca_file)
    url = f"osdf://{NAMESPACE}/nothing/here.i3"
    with pytest.raises(TransferNotFound):
        await asyncio.to_thread(transfer_in, url, tmp_path / "x", retry=ONCE, schemes={"osdf": files})
    record = await asyncio.to_thread(transfer_in, url, tmp_path / "x", optional=True, retry=ONCE,
                                     schemes={"osdf": files})
    assert record.skipped and not (tmp_path / "x").exists()


async def test_outside_every_namespace_is_a_transfer_error(public_federation, tmp_path):
    files = PelicanFiles(federation=public_federation.url, ca_file=public_federation.ca_file)
    with pytest.raises(TransferError, match="no cache or origin"):
        await asyncio.to_thread(transfer_in, "osdf:///elsewhere/f", tmp_path / "x", retry=ONCE,
                                schemes={"osdf": files})


async def test_unreachable_federation_is_a_retryable_transfer_error(tmp_path):
    files = PelicanFiles(federation="pelican://127.0.0.1:9", timeout=5)  # discard port: refused
    with pytest.raises(TransferError) as caught:
        await asyncio.to_thread(transfer_in, "osdf:///icecube/wipac/f", tmp_path / "x",
                                retry=RetryPolicy(attempts=2, delay=0.01), schemes={"osdf": files})
    assert caught.value.kind == "transfer" and caught.value.attempts == 2
    assert "cannot contact pelican director" in caught.value.reason


async def test_scoped_token_reads_and_writes_its_paths_only(secured, tmp_path):
    source = tmp_path / "f.i3"
    digest = _file(source, 100_000)
    writer = secured.files("storage.modify:/data/sim/2 storage.read:/data/sim/2")
    url = f"osdf://{NAMESPACE}/data/sim/2/f.i3"
    record = await asyncio.to_thread(transfer_out, source, url, retry=ONCE, schemes={"osdf": writer})
    assert record.sha512 == digest
    reader = secured.files("storage.read:/data/sim")
    record = await asyncio.to_thread(transfer_in, url, tmp_path / "back", retry=ONCE, schemes={"osdf": reader})
    assert record.sha512 == digest


async def test_token_without_the_scope_is_a_credentials_failure_and_writes_nothing(secured, tmp_path):
    source = tmp_path / "f.i3"
    _file(source, 10_000)
    reader_only = secured.files("storage.read:/data/sim")
    url = f"osdf://{NAMESPACE}/data/sim/3/f.i3"
    with pytest.raises(TransferCredentialsError) as caught:
        await asyncio.to_thread(transfer_out, source, url, retry=RetryPolicy(attempts=3, delay=0.01),
                                schemes={"osdf": reader_only})
    assert caught.value.kind == "credentials" and caught.value.attempts == 1  # not retried
    assert "HTTP 403" in caught.value.reason and "storage.modify" in caught.value.reason
    assert not (secured.federation.root / "icecube/wipac/data/sim/3").exists()
    other_path = secured.files("storage.read:/data/exp")
    (secured.federation.root / "icecube/wipac/data/sim").mkdir(parents=True, exist_ok=True)
    (secured.federation.root / "icecube/wipac/data/sim/in.i3").write_bytes(b"x")
    with pytest.raises(TransferCredentialsError, match="storage.read"):
        await asyncio.to_thread(transfer_in, f"osdf://{NAMESPACE}/data/sim/in.i3", tmp_path / "in",
                                retry=ONCE, schemes={"osdf": other_path})
    assert not (tmp_path / "in").exists()


async def test_no_token_expired_token_and_foreign_token_are_refused(secured, tmp_path, issuer):
    (secured.federation.root / "icecube/wipac/d").mkdir(parents=True)
    (secured.federation.root / "icecube/wipac/d/in.i3").write_bytes(b"x")
    url = f"osdf://{NAMESPACE}/d/in.i3"
    for files in (secured.files(None), secured.files("storage.read:/", lifetime=-120)):
        with pytest.raises(TransferCredentialsError, match="HTTP 401"):
            await asyncio.to_thread(transfer_in, url, tmp_path / "in", retry=ONCE, schemes={"osdf": files})
    stranger = Issuer(url=issuer.url)  # same name, different key: the signature does not verify
    files = PelicanFiles(federation=secured.federation.url, token=stranger.mint("storage.read:/"),
                         ca_file=secured.federation.ca_file)
    with pytest.raises(TransferCredentialsError, match="HTTP 401"):
        await asyncio.to_thread(transfer_in, url, tmp_path / "in", retry=ONCE, schemes={"osdf": files})


async def test_pelicanfs_listing_and_info_through_the_director(public_federation, tmp_path):
    files = PelicanFiles(federation=public_federation.url, ca_file=public_federation.ca_file)
    base = public_federation.root / "icecube/wipac/list"
    (base / "sub").mkdir(parents=True)
    (base / "a.txt").write_bytes(b"abc")
    fs = files._fs("osdf:///icecube/wipac/list")
    names = await asyncio.to_thread(fs.ls, f"{NAMESPACE}/list", detail=True)
    assert {(Path(n["name"].rstrip("/")).name, n["type"]) for n in names} >= {("a.txt", "file"),
                                                                             ("sub", "directory")}
    info = await asyncio.to_thread(fs.info, f"{NAMESPACE}/list/a.txt")
    assert info["size"] == 3
    assert await asyncio.to_thread(fs.cat_file, f"{NAMESPACE}/list/a.txt") == b"abc"


async def test_write_only_token_cannot_verify_its_upload(secured, tmp_path):
    """frazil reads each upload back; a token without storage.read fails as credentials, naming it."""
    source = tmp_path / "f.i3"
    _file(source, 1000)
    writer = secured.files("storage.modify:/data/sim/9")
    with pytest.raises(TransferCredentialsError, match="storage.read"):
        await asyncio.to_thread(transfer_out, source, f"osdf://{NAMESPACE}/data/sim/9/f.i3", retry=ONCE,
                                schemes={"osdf": writer})


async def test_an_unreachable_issuer_refuses_every_token(tmp_path):
    """The origin cannot check a token without the issuer's keys: 401, a credentials failure."""
    async with Federation(tmp_path / "o", namespaces=[NAMESPACE], issuer="http://127.0.0.1:9") as federation:
        (federation.root / "icecube/wipac/x").mkdir(parents=True)
        (federation.root / "icecube/wipac/x/f").write_bytes(b"x")
        files = PelicanFiles(federation=federation.url, ca_file=federation.ca_file,
                             token=Issuer(url="http://127.0.0.1:9").mint("storage.read:/"))
        with pytest.raises(TransferCredentialsError, match="HTTP 401"):
            await asyncio.to_thread(transfer_in, f"osdf://{NAMESPACE}/x/f", tmp_path / "f", retry=ONCE,
                                    schemes={"osdf": files})
