"""A log, with a live tail while its task runs (reference §8 ``/dataset/{id}/log/{log_id}``).

The log text is escaped like everything else (IceProd sent it raw) and
reading it needs the READ right (IceProd asked for write, reference §11).
The page's script polls ``/dataset/{id}/log/{log_id}.json?offset=N`` for the
characters after N while the task is processing.
"""
from __future__ import annotations

from aiohttp import web

from server.keys import STORE
from server.store import Log
from server.web.framework import PageError, PageRoutes, dataset_for, json_page, render

routes = PageRoutes()
PAGE_CHARS = 2_000_000
"""A page shows at most the last 2 M characters; the rest is one download away (REST)."""
TAIL_CHARS = 1_000_000


async def _log(request: web.Request) -> tuple[Log, bool]:
    dataset = await dataset_for(request, request.match_info["key"])
    store = request.app[STORE]
    log = await store.get_log(request.match_info["log_id"])
    if log is None or log.dataset_id != dataset.dataset_id:
        raise PageError(404, "log not found in this dataset")
    running = False
    if log.task_id:
        task = await store.get_task(log.task_id)
        running = task is not None and task.status == "processing"
    return log, running


@routes.page("/dataset/{key}/log/{log_id:[0-9a-fA-F]+}")
async def log_page(request: web.Request) -> web.StreamResponse:
    log, running = await _log(request)
    text = log.data
    skipped = max(0, len(text) - PAGE_CHARS)
    return render(request, "log.html", log=log, text=text[skipped:], skipped=skipped, size=len(text),
                  running=running, dataset_id=log.dataset_id)


@routes.page("/dataset/{key}/log/{log_id:[0-9a-fA-F]+}.json", as_json=True)
async def log_tail(request: web.Request) -> web.StreamResponse:
    raw = request.query.get("offset", "0")
    if not raw.isdigit():
        raise PageError(400, f"offset must be a number of characters >= 0, got {raw!r}")
    log, running = await _log(request)
    offset = min(int(raw), len(log.data))
    chunk = log.data[offset:offset + TAIL_CHARS]
    return json_page({"data": chunk, "offset": offset + len(chunk), "size": len(log.data), "running": running})
