"""Every user route: declared in the OpenAPI document, 401 without a token,
403 for pilot tokens (they may use only pilot routes), 403 for admin-only
routes called by a user, and no route answers a stranger with data."""
from __future__ import annotations

import re

import pytest

from server.keys import ROUTE_SPECS
from tests.server.user_api_helpers import call, create_dataset

pytestmark = pytest.mark.asyncio

MODULES = {f"server.api.{name}" for name in ("datasets", "config", "jobs", "tasks", "dataset_task_actions", "actions")}


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: ids.get(m.group(1), "x"), path)


async def test_every_user_route_is_documented_and_guarded(server):
    alice = server.token("alice")
    dataset_id = await create_dataset(server, alice, jobs=1)
    task_id = next(iter(await server.rest(alice).request("GET", f"/datasets/{dataset_id}/tasks")))
    task = await server.store.get_task(task_id)
    ids = {"dataset_id": dataset_id, "task_id": task_id, "job_id": task.job_id, "status": "suspended",
           "name": "generate", "action": "submit", "message_id": "0" * 32}
    specs = [s for s in server.app[ROUTE_SPECS] if s.handler.__module__ in MODULES]
    assert len(specs) == 59  # every route of datasets, config, jobs, tasks, files, actions
    _, document, _ = await call(server, "GET", "/api/openapi.json")
    pilot = server.token("pilot", "pilot", ())
    stranger = server.token("eve", groups=("guests",))
    for spec in specs:
        assert spec.method.lower() in document["paths"][spec.path], spec.path
        path = _fill(spec.path, ids)
        status, reply, _ = await call(server, spec.method, path, body={})
        assert status == 401, (spec.method, path)
        status, reply, _ = await call(server, spec.method, path, pilot, body={})
        assert status == 403 and reply["error"] == "pilot tokens may only use pilot routes", (spec.method, path)
        status, reply, _ = await call(server, spec.method, path, stranger, body={})
        if spec.roles == {"admin"} or spec.right:
            assert status == 403, (spec.method, path, status, reply)
        else:
            assert status < 500, (spec.method, path, status, reply)
    # the stranger changed nothing
    assert (await server.store.get_dataset(dataset_id)).status == "processing"
    assert (await server.store.get_task(task_id)).status == "idle"
