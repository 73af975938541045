"""The scratch store over real HTTP: checksums, atomic uploads, rights, cleanup."""
from __future__ import annotations

import asyncio
import base64
import hashlib

import aiohttp
import pytest
import yarl

from common.transfer import HttpFiles
from server.scratch.files import cleanup_job_scratch, scratch_root
from tests.server.test_api_pilot_support import claim, make_dataset, register


@pytest.fixture
async def made(server):
    return await make_dataset(server.store, jobs=2)


def _headers(server, username="pilot-1", role="pilot", groups=("users",)) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token(username, role=role, groups=groups)}"}


async def test_put_get_round_trip_with_checksums(server, made):
    data = b"event data\n" * 10_000
    sha = hashlib.sha512(data).hexdigest()
    base = f"/scratch/{made.dataset.dataset}/0"
    async with aiohttp.ClientSession(server.url, headers=_headers(server)) as pilot:
        async with pilot.put(f"{base}/gen.i3", data=data, headers={"X-Sha512": sha, "X-Size": str(len(data))}) as r:
            assert r.status == 201 and await r.json() == {"size": len(data), "sha512": sha}
        async with pilot.get(f"{base}/gen.i3") as r:
            assert r.status == 200 and await r.read() == data
            assert r.headers["X-Sha512"] == sha
            assert r.headers["Digest"] == "sha-512=" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        # the Digest header form is checked too; the dataset id works as well as its number
        digest = "sha-512=" + base64.b64encode(hashlib.sha512(b"x").digest()).decode()
        async with pilot.put(f"/scratch/{made.dataset.dataset_id}/shared.txt", data=b"x",
                             headers={"Digest": digest}) as r:
            assert r.status == 201
    records = await server.store.list_scratch_files(made.dataset.dataset_id)
    assert {(r.path.split("/", 1)[1], r.job_index) for r in records} == {("0/gen.i3", 0), ("shared.txt", None)}


async def test_corrupt_upload_is_refused_and_keeps_the_old_file(server, made):
    url = f"/scratch/{made.dataset.dataset}/0/f.dat"
    async with aiohttp.ClientSession(server.url, headers=_headers(server)) as pilot:
        async with pilot.put(url, data=b"good") as r:
            assert r.status == 201
        wrong = hashlib.sha512(b"something else").hexdigest()
        async with pilot.put(url, data=b"bad!", headers={"X-Sha512": wrong}) as r:
            assert r.status == 400 and "sha512 mismatch" in (await r.json())["error"]
        async with pilot.put(url, data=b"bad!", headers={"X-Size": "99"}) as r:
            assert r.status == 400 and "size mismatch" in (await r.json())["error"]
        async with pilot.put(url, data=b"bad!", headers={"X-Sha512": "zz"}) as r:
            assert r.status == 400 and "X-Sha512" in (await r.json())["error"]
        async with pilot.get(url) as r:
            assert await r.read() == b"good"
    job_dir = scratch_root(server.settings) / made.dataset.dataset_id / "0"
    assert sorted(p.name for p in job_dir.iterdir()) == ["f.dat"]  # no temporary file left behind


@pytest.mark.parametrize("path", ["0/../../../etc/passwd", "0/%2e%2e/%2e%2e/x", "0//x", "0/./x", "a\\..\\x",
                                  "0/.frazil-upload-1"])
async def test_path_traversal_is_refused(server, made, path):
    # encoded=True: the client sends the path as written, without normalising it
    url = yarl.URL(f"{server.url}/scratch/{made.dataset.dataset}/{path}", encoded=True)
    async with aiohttp.ClientSession(headers=_headers(server)) as pilot:
        async with pilot.put(url, data=b"x") as r:
            assert r.status == 400, path
            assert "invalid scratch path" in (await r.json())["error"]
    assert await server.store.list_scratch_files(made.dataset.dataset_id) == []
    outside = scratch_root(server.settings).parent
    assert not (outside / "x").exists() and not (outside / "etc").exists()


async def test_rights_readers_read_writers_write(server, made):
    url = f"/scratch/{made.dataset.dataset}/1/out.txt"
    async with aiohttp.ClientSession(server.url) as client:
        async with client.put(url, data=b"x") as r:
            assert r.status == 401
        async with client.put(url, data=b"x", headers=_headers(server, "bob", "user")) as r:
            assert r.status == 403  # a reader may not write
        async with client.put(url, data=b"mine", headers=_headers(server, "alice", "user")) as r:
            assert r.status == 201  # the owner may
        async with client.get(url, headers=_headers(server, "bob", "user")) as r:
            assert r.status == 200 and await r.read() == b"mine"
        async with client.get(url, headers=_headers(server, "eve", "user", groups=("guests",))) as r:
            assert r.status == 403
        async with client.get(f"/scratch/999/{'x'}", headers=_headers(server)) as r:
            assert r.status == 404
        async with client.delete(url, headers=_headers(server, "bob", "user")) as r:
            assert r.status == 403
        async with client.delete(url, headers=_headers(server)) as r:
            assert r.status == 200
        async with client.get(url, headers=_headers(server)) as r:
            assert r.status == 404


async def test_pycurl_transfers_verify_against_the_store(server, made, tmp_path):
    """The pilot's own HTTP transfer code (pycurl) talks to the scratch store."""
    source = tmp_path / "src.bin"
    source.write_bytes(bytes(range(256)) * 4000)
    files = HttpFiles(headers=_headers(server))
    url = f"{server.url}/scratch/{made.dataset.dataset}/0/src.bin"
    await asyncio.to_thread(files.upload, source, url)
    expected = await asyncio.to_thread(files.checksum, url)
    assert expected.size == source.stat().st_size
    assert expected.sha512 == hashlib.sha512(source.read_bytes()).hexdigest()


async def test_job_scratch_removed_when_the_job_completes(server, made):
    number = made.dataset.dataset
    async with aiohttp.ClientSession(server.url, headers=_headers(server)) as pilot:
        for path in ("0/a.i3", "0/sub/b.i3", "1/c.i3", "dataset.txt"):
            async with pilot.put(f"/scratch/{number}/{path}", data=b"x") as r:
                assert r.status == 201
    rc = server.rest(server.token("pilot-1", role="pilot"))
    pilot_id = await register(rc)
    task = await claim(rc, pilot_id)
    assert task["job_index"] == 0
    await rc.request("POST", f"/tasks/{task['task_id']}/task_actions/complete",
                     {"instance_id": task["instance_id"], "time_used": 1})
    root = scratch_root(server.settings) / made.dataset.dataset_id
    assert not (root / "0").exists()
    assert (root / "1" / "c.i3").exists() and (root / "dataset.txt").exists()
    remaining = {r.path for r in await server.store.list_scratch_files(made.dataset.dataset_id)}
    assert remaining == {f"{made.dataset.dataset_id}/1/c.i3", f"{made.dataset.dataset_id}/dataset.txt"}
    # the function the roll-up loop calls is idempotent
    assert await cleanup_job_scratch(server.store, server.settings, made.dataset.dataset_id, 1) == 1
    assert await cleanup_job_scratch(server.store, server.settings, made.dataset.dataset_id, 1) == 0
