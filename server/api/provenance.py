"""``GET /provenance?url=...``: how a file was made (DESIGN.md §3.8).

Each completed attempt that reported the URL as an output is returned with
everything needed to reproduce it: dataset, job, task, attempt, config
version, pilot, host, site, each module's argv and env_shell, exit codes and
the file's checksum. Only datasets the caller may read are shown (rights are
looked up once for all of them).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from server.api.errors import bad_request, not_found
from server.api.params import json_reply
from server.api.routing import ApiRoutes, QueryParam, caller
from server.auth import readable_ids
from server.keys import STORE
from server.store import ProvenanceRecord, Store

routes = ApiRoutes("provenance")
MAX_URL = 8192


async def _attempt_details(store: Store, record: ProvenanceRecord) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for attempt in await store.get_attempts(record.task_id):
        if attempt.instance_id == record.instance_id or (not record.instance_id and attempt.attempt == record.attempt):
            details = {
                "pilot_id": attempt.pilot_id, "host": attempt.host, "site": attempt.site,
                "start": attempt.start, "end": attempt.end, "time_used": attempt.time_used,
                "frazil_version": attempt.frazil_version, "exit_codes": attempt.exit_codes,
                "modules": [{key: module.get(key) for key in ("name", "argv", "env_shell", "exit_code", "tray",
                                                              "iteration") if key in module}
                            for module in attempt.modules],
                "inputs": attempt.inputs, "resources": attempt.resources,
                "resources_used": attempt.resources_used,
            }
            break
    return details


@routes.get("/provenance", summary="the attempts that produced a file URL", roles={"admin", "user"},
            query=[QueryParam("url", "the output's URL (file://, http(s)://, gsiftp://, ...)", required=True)])
async def provenance(request: web.Request) -> web.Response:
    identity = caller(request)
    url = request.query.get("url", "")
    if not url:
        raise bad_request('query parameter "url" is required')
    if len(url) > MAX_URL:
        raise bad_request(f'query parameter "url" is longer than {MAX_URL} characters')
    store = request.app[STORE]
    records = await store.provenance(url)
    if records:
        readable = await readable_ids(store, identity, sorted({r.dataset_id for r in records}))
        records = [r for r in records if r.dataset_id in readable]
    if not records:  # unreadable is reported like unknown: nothing leaks about others' datasets
        raise not_found(f"no provenance recorded for {url}")
    results = []
    for record in records:
        doc = asdict(record)
        doc.update(await _attempt_details(store, record))
        results.append(doc)
    return json_reply({"url": url, "results": results})
