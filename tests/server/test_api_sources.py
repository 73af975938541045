"""Module sources attached to /actions/submit: checked, stored by sha512 with the
config version, named in the claim reply, served to pilots and readers only."""
from __future__ import annotations

import base64
import hashlib
import json

import aiohttp
import pytest

from server.store import NewDataset
from tests.server.user_api_helpers import call, run_actions

pytestmark = pytest.mark.asyncio

GEN = b"import sys\nprint('generate', sys.argv[1:])\n"
HELPER = b"#!/bin/sh\necho combine\n"


def _config() -> dict:
    return {"version": 3.2, "tasks": [
        {"name": "gen", "trays": [{"modules": [{"src": "gen.py"}, {"src": "./tools/comb.sh"}]}]},
        {"name": "use", "depends": ["gen"], "data": [{"type": "job_temp", "movement": "input", "local": "staged.py"}],
         "trays": [{"modules": [{"src": "staged.py"}, {"src": "missing.py"}, {"src": "/abs/x.py"},
                                {"src": "$(job).py"}, {"src": "http://example.org/remote.py"}]}]},
    ]}


def _body(sources: dict | None = None, **extra) -> dict:
    body = {"config": json.dumps(_config()), "description": "sources", "jobs_submitted": 1, **extra}
    if sources is not None:
        body["sources"] = sources
    return body


async def _fetch(server, path: str, token: str) -> tuple[int, bytes, str]:
    """(status, body bytes, content type): blobs are bytes, not JSON."""
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + path, headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.read(), resp.headers.get("Content-Type", "")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _submit(server, token, body) -> dict:
    status, reply, _ = await call(server, "POST", "/actions/submit", token, body=body)
    assert status == 201, reply
    await run_actions(server)
    return await server.rest(token).request("GET", f"/actions/submit/{reply['result']}")


async def test_a_bundle_is_stored_with_the_config_version_and_served(server):
    alice = server.token("alice")
    done = await _submit(server, alice, _body({"gen.py": _b64(GEN), "tools/comb.sh": _b64(HELPER)}))
    assert done["status"] == "complete", done
    dataset_id = done["payload"]["dataset_id"]
    digests = {"gen.py": hashlib.sha512(GEN).hexdigest(), "tools/comb.sh": hashlib.sha512(HELPER).hexdigest()}
    assert done["payload"]["source_manifest"] == digests and "sources" not in done["payload"]
    # the one relative src nothing puts in the work dir is reported, with its path
    [warning] = done["payload"]["config_warnings"]
    assert "config['tasks'][1]['trays'][0]['modules'][1]['src']" in warning and "'missing.py'" in warning
    listed = await server.rest(alice).request("GET", f"/datasets/{dataset_id}/sources", {"version": 1})
    assert listed == {"sources": digests}
    number = (await server.rest(alice).request("GET", f"/datasets/{dataset_id}"))["dataset"]
    for who in (alice, server.token("pilot-1", role="pilot"), server.token("cron", role="system")):
        for key in (dataset_id, str(number)):
            assert await _fetch(server, f"/datasets/{key}/sources/{digests['gen.py']}", who) == \
                (200, GEN, "application/octet-stream")
    # a reader outside the dataset's groups sees nothing; a hash of another dataset is not found here
    status, _, _ = await call(server, "GET", f"/datasets/{dataset_id}/sources/{digests['gen.py']}",
                              server.token("eve", groups=("guests",)))
    assert status == 403
    other = await server.store.create_dataset(NewDataset(description="o", jobs_submitted=1, tasks_submitted=1,
                                                         tasks_per_job=1, group="users", username="alice"))
    status, reply, _ = await call(server, "GET", f"/datasets/{other.dataset_id}/sources/{digests['gen.py']}",
                                  server.token("root", role="admin"))
    assert status == 404 and "no module source" in reply["error"]
    status, reply, _ = await call(server, "GET", f"/datasets/{dataset_id}/sources/not-a-hash", alice)
    assert status == 404 and "sha512" in reply["error"]


async def test_the_claim_names_the_sources_a_pilot_fetches(server):
    alice = server.token("alice")
    done = await _submit(server, alice, _body({"gen.py": _b64(GEN)}))
    dataset_id = done["payload"]["dataset_id"]
    await server.store.release_dependencies(dataset_id=dataset_id)
    await server.store.queue_tasks(10, dataset_id=dataset_id)
    pilot = server.token("pilot-1", role="pilot")
    registered = await server.rest(pilot).request("POST", "/pilots", {"resources": {"cpu": 1, "memory": 4.0,
                                                  "disk": 10.0, "time": 1.0, "gpu": 0}, "hostname": "n1"})
    status, claim, _ = await call(server, "POST", "/task_actions/process", pilot, body={
        "pilot_id": registered["result"], "resources": {"cpu": 1, "memory": 4.0, "disk": 10.0, "time": 1.0, "gpu": 0}})
    assert status == 200, claim
    url = claim["sources"]["gen.py"]
    assert url == f"{server.url}/datasets/{dataset_id}/sources/{hashlib.sha512(GEN).hexdigest()}"
    assert (await _fetch(server, url[len(server.url):], pilot))[:2] == (200, GEN)


@pytest.mark.parametrize("sources, message", [
    ({"gen.py": "***"}, "not valid base64"),
    ({"../gen.py": _b64(GEN)}, "not a clean relative path"),
    ({"./gen.py": _b64(GEN)}, "not a clean relative path"),
    ({"other.py": _b64(GEN)}, "'other.py' is the src of no module"),
    (["gen.py"], "must be an object"),
    ({"gen.py": 5}, "base64 string"),
])
async def test_bad_bundles_are_400_and_nothing_is_queued(server, sources, message):
    status, reply, _ = await call(server, "POST", "/actions/submit", server.token("alice"), body=_body(sources))
    assert status == 400 and message in reply["error"], reply
    assert sum((await server.store.action_counts("submit")).values()) == 0


async def test_a_bundle_over_the_size_limit_is_refused(server):
    server.settings.max_source_bundle_bytes = 1000
    status, reply, _ = await call(server, "POST", "/actions/submit", server.token("alice"),
                                  body=_body({"gen.py": _b64(b"x" * 600), "tools/comb.sh": _b64(b"y" * 600)}))
    assert status == 400 and "larger than 1000 bytes (setting max_source_bundle_bytes)" in reply["error"], reply
