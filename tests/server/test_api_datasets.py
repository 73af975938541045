"""Datasets and config routes: IceProd's shapes, rights in bulk, bad input, config versions."""
from __future__ import annotations

import pytest
from requests import HTTPError

from common.config import fill_defaults
from tests.server.user_api_helpers import CONFIG, call, config, create_dataset

pytestmark = pytest.mark.asyncio

CREATE = {"description": "d", "jobs_submitted": 2, "tasks_submitted": 6, "tasks_per_job": 3, "group": "users"}


async def test_create_and_get_dataset_shape(server):
    token = server.token("alice")
    status, body, headers = await call(server, "POST", "/datasets", token, body={**CREATE, "username": "mallory"})
    assert status == 201
    dataset_id = body["result"]
    assert headers["Location"] == f"/datasets/{dataset_id}"
    doc = await server.rest(token).request("GET", f"/datasets/{dataset_id}")
    assert doc["username"] == "alice"  # forced to the caller for plain users
    assert doc["dataset"] == 1 and doc["status"] == "processing" and doc["truncated"] is False
    assert doc["priority"] == 0.5 and doc["tasks_per_job"] == 3
    assert await server.store.get_user("alice") is not None
    rights = (await server.store.rights_for([dataset_id]))[dataset_id]
    assert rights.write_users == ["alice"] and "users" in rights.read_groups


async def test_admin_may_create_for_another_user(server):
    status, body, _ = await call(server, "POST", "/datasets", server.token("root", "admin", ["admin"]),
                                 body={**CREATE, "username": "bob", "group": "simprod"})
    assert status == 201
    assert (await server.store.get_dataset(body["result"])).username == "bob"


@pytest.mark.parametrize("body, text", [
    ({k: v for k, v in CREATE.items() if k != "group"}, "missing key: group"),
    ({**CREATE, "colour": "red"}, "invalid keys found"),
    ({**CREATE, "jobs_submitted": "2"}, "'jobs_submitted'"),
    ({**CREATE, "jobs_submitted": 10**30, "tasks_submitted": 3 * 10**30}, "'jobs_submitted'"),
    ({**CREATE, "tasks_submitted": 5}, "tasks_submitted must equal"),
    ({**CREATE, "status": "sleeping"}, "'status'"),
    ({**CREATE, "group": "simprod"}, "not one of your groups"),
])
async def test_create_bad_input_stores_nothing(server, body, text):
    status, reply, _ = await call(server, "POST", "/datasets", server.token("alice"), body=body)
    assert 400 <= status < 500 and text in reply["error"], reply
    assert (await server.store.list_datasets()).rows == []


async def test_malformed_json_and_non_object(server):
    token = server.token("alice")
    status, reply, _ = await call(server, "POST", "/datasets", token, raw="{not json")
    assert status == 400 and "not valid JSON" in reply["error"]
    status, reply, _ = await call(server, "POST", "/datasets", token, raw="[1, 2]")
    assert status == 400 and reply["code"] == 400
    assert (await server.store.list_datasets()).rows == []


async def test_list_filters_keys_and_bulk_read_rights(server):
    alice, bob = server.token("alice"), server.token("bob", groups=("simprod",))
    a1 = await create_dataset(server, alice, materialized=False)
    a2 = await create_dataset(server, alice, materialized=False)
    b1 = await create_dataset(server, bob, group="simprod", materialized=False)
    # bob is not in "users", so alice's datasets are not readable to him; his own is.
    listing = await server.rest(bob).request("GET", "/datasets", {"keys": "dataset|jobs_submitted"})
    assert list(listing) == [b1]
    assert listing[b1] == {"dataset_id": b1, "dataset": 3, "jobs_submitted": 3}
    listing = await server.rest(alice).request("GET", "/datasets")
    assert set(listing) == {a1, a2, b1}  # simprod datasets are readable by "users" by default
    only = await server.rest(alice).request("GET", "/datasets", {"users": "bob", "status": "processing"})
    assert list(only) == [b1]
    summary = await server.rest(bob).request("GET", "/dataset_summaries/status")
    assert summary == {"processing": [b1]}
    status, reply, _ = await call(server, "GET", "/datasets", alice, params={"status": "sleeping"})
    assert status == 400 and "sleeping" in reply["error"]


async def test_pagination_walks_every_dataset_once(server):
    token = server.token("alice")
    ids = [await create_dataset(server, token, materialized=False) for _ in range(5)]
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": "2", **({"after": after} if after else {})}
        status, body, headers = await call(server, "GET", "/datasets", token, params=params)
        assert status == 200
        seen.extend(body)
        pages += 1
        after = headers.get("X-Next-Cursor")
        if not after:
            break
    assert seen == ids and pages == 3


async def test_status_priority_description_jobs_submitted(server):
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, materialized=False)
    rc = server.rest(token)
    assert await rc.request("PUT", f"/datasets/{dataset_id}/status", {"status": "suspended"}) == {}
    assert await rc.request("PUT", f"/datasets/{dataset_id}/status", {"status": "suspended"}) == {}  # idempotent
    await rc.request("PUT", f"/datasets/{dataset_id}/description", {"description": "new words"})
    await rc.request("PUT", f"/datasets/{dataset_id}/priority", {"priority": 0.9})
    await rc.request("PUT", f"/datasets/{dataset_id}/jobs_submitted", {"jobs_submitted": 5})
    doc = await rc.request("GET", f"/datasets/{dataset_id}")
    assert (doc["status"], doc["description"], doc["priority"]) == ("suspended", "new words", 0.9)
    assert (doc["jobs_submitted"], doc["tasks_submitted"]) == (5, 15)
    status, reply, _ = await call(server, "PUT", f"/datasets/{dataset_id}/status", token, body={"status": "complete"})
    assert status == 400 and reply["error"] == "Bad state transition for status"
    status, reply, _ = await call(server, "PUT", f"/datasets/{dataset_id}/jobs_submitted", token,
                                  body={"jobs_submitted": 2})
    assert status == 400
    status, reply, _ = await call(server, "PUT", f"/datasets/{dataset_id}/priority", token, raw='{"priority": NaN}')
    assert status == 400 and "priority" in reply["error"]
    await rc.request("POST", f"/datasets/{dataset_id}/dataset_actions/hard_reset")
    await rc.request("POST", f"/datasets/{dataset_id}/dataset_actions/truncate")
    doc = await rc.request("GET", f"/datasets/{dataset_id}")
    assert doc["status"] == "processing" and doc["truncated"] is True


async def test_rights_on_single_dataset_routes(server):
    owner = server.token("alice")
    dataset_id = await create_dataset(server, owner, materialized=False)
    other = server.token("bob", groups=("users",))
    stranger = server.token("eve", groups=("guests",))
    assert (await server.rest(other).request("GET", f"/datasets/{dataset_id}"))["dataset_id"] == dataset_id
    status, _, _ = await call(server, "PUT", f"/datasets/{dataset_id}/description", other, body={"description": "x"})
    assert status == 403
    status, _, _ = await call(server, "GET", f"/datasets/{dataset_id}", stranger)
    assert status == 403
    status, reply, _ = await call(server, "GET", "/datasets/" + "0" * 32, owner)
    assert status == 404 and reply["error"] == "Dataset not found"
    status, _, _ = await call(server, "GET", f"/datasets/{dataset_id}")
    assert status == 401
    status, _, _ = await call(server, "GET", f"/datasets/{dataset_id}", server.token("pilot", "pilot", ()))
    assert status == 403
    # IceProd's system role (its services and cron tasks) reads and writes every dataset
    system = server.token("cron", "system", ())
    status, _, _ = await call(server, "GET", f"/datasets/{dataset_id}", system)
    assert status == 200
    status, _, _ = await call(server, "PUT", f"/datasets/{dataset_id}/description", system, body={"description": "y"})
    assert status == 200


async def test_config_versions_kept_on_edit(server):
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, materialized=False)
    rc = server.rest(token)
    assert await rc.request("GET", f"/config/{dataset_id}") == fill_defaults(CONFIG)  # stored filled
    edited = config(description="second")
    status, _, _ = await call(server, "PUT", f"/config/{dataset_id}", token, body=edited, params={"comment": "why"})
    assert status == 200
    assert (await rc.request("GET", f"/config/{dataset_id}"))["description"] == "second"
    assert (await rc.request("GET", f"/config/{dataset_id}", {"version": 1}))["description"] == "three steps"
    versions = (await rc.request("GET", f"/config/{dataset_id}/versions"))["versions"]
    assert [(v["version"], v["author"], v["comment"]) for v in versions] == [(1, "alice", ""), (2, "alice", "why")]
    assert all(len(v["sha256"]) == 64 for v in versions)


async def test_config_validation_error_text_and_nothing_stored(server):
    token = server.token("alice")
    dataset_id = await create_dataset(server, token, materialized=False)
    bad = config(tasks=[{"name": "a", "trays": []}])
    status, reply, _ = await call(server, "PUT", f"/config/{dataset_id}", token, body=bad)
    assert status == 400
    assert reply["error"].startswith("Validation error in config['tasks'][0]['trays']:")
    assert len(await server.store.list_config_versions(dataset_id)) == 1
    status, reply, _ = await call(server, "GET", f"/config/{dataset_id}", token, params={"version": "9"})
    assert status == 404 and reply["error"] == "Config not found"


async def test_rest_client_raises_for_errors(server):
    with pytest.raises(HTTPError):
        await server.rest(server.token("alice")).request("GET", "/datasets/" + "f" * 32)
