"""How a file was made (DESIGN.md §3.8).

Each completed attempt that reported the URL as an output comes with
everything needed to reproduce it: dataset, job, task, attempt, config
version, pilot, host, site, each module's argv and env_shell, exit codes and
the file's checksum. Only datasets the caller may read are shown (rights are
looked up once for all of them); unreadable is reported like unknown, so
nothing leaks about others' datasets.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from server.auth import Identity, readable_ids
from server.store import NotFoundError, ProvenanceRecord, Store

MODULE_KEYS = ("name", "argv", "env_shell", "exit_code", "tray", "iteration")


async def _attempt_details(store: Store, record: ProvenanceRecord) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for attempt in await store.get_attempts(record.task_id):
        if attempt.instance_id == record.instance_id or (not record.instance_id and attempt.attempt == record.attempt):
            details = {
                "pilot_id": attempt.pilot_id, "host": attempt.host, "site": attempt.site,
                "start": attempt.start, "end": attempt.end, "time_used": attempt.time_used,
                "frazil_version": attempt.frazil_version, "exit_codes": attempt.exit_codes,
                "modules": [{key: module.get(key) for key in MODULE_KEYS if key in module}
                            for module in attempt.modules],
                "inputs": attempt.inputs, "resources": attempt.resources,
                "resources_used": attempt.resources_used,
            }
            break
    return details


async def provenance(store: Store, identity: Identity, url: str) -> list[dict[str, Any]]:
    """The attempts that produced ``url`` that the caller may see (NotFoundError: none)."""
    records = await store.provenance(url)
    if records:
        readable = await readable_ids(store, identity, sorted({r.dataset_id for r in records}))
        records = [r for r in records if r.dataset_id in readable]
    if not records:
        raise NotFoundError(f"no provenance recorded for {url}")
    results = []
    for record in records:
        doc = asdict(record)
        doc.update(await _attempt_details(store, record))
        results.append(doc)
    return results
