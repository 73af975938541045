"""Shared pieces of the user-API tests: a small three-task config, a raw HTTP
call that returns status and body (RestClient raises on 4xx), and dataset setup
through the real routes."""
from __future__ import annotations

import copy
import json
from typing import Any

import aiohttp

from server.scheduling.action_worker import ActionWorker
from server.scheduling.materialize import materialize

CONFIG: dict[str, Any] = {
    "version": 3.2,
    "description": "three steps",
    "tasks": [
        {"name": "generate", "trays": [{"modules": [{"src": "gen.py", "args": {"seed": "$(job)"}}]}],
         "requirements": {"memory": 2.0}},
        {"name": "propagate", "depends": ["generate"], "trays": [{"modules": [{"src": "prop.py"}]}],
         "requirements": {"gpu": 1}},
        {"name": "detect", "depends": ["propagate"], "trays": [{"modules": [{"src": "det.py"}]}]},
    ],
}


def config(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(CONFIG)
    out.update(changes)
    return out


async def call(server: Any, method: str, path: str, token: str | None = None, *, body: Any = None,
               raw: str | bytes | None = None, params: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """(status, decoded JSON body or None, headers)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data: Any = raw
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    async with aiohttp.ClientSession() as session:
        async with session.request(method, server.url + path, data=data, params=params, headers=headers) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None), resp.headers


async def create_dataset(server: Any, token: str, *, jobs: int = 3, group: str = "users",
                         cfg: dict[str, Any] | None = None, materialized: bool = True,
                         description: str = "test dataset") -> str:
    cfg = cfg or CONFIG
    n = len(cfg["tasks"])
    rc = server.rest(token)
    reply = await rc.request("POST", "/datasets", {"description": description, "jobs_submitted": jobs,
                                                   "tasks_submitted": jobs * n, "tasks_per_job": n, "group": group})
    dataset_id = reply["result"]
    await rc.request("PUT", f"/config/{dataset_id}", cfg)
    if materialized:
        await materialize(server.store, server.settings, dataset_id, jobs)
    return dataset_id


async def run_actions(server: Any) -> int:
    return await ActionWorker(server.store, server.settings, "test-worker").run_until_empty()
