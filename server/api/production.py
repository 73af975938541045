"""Production routes (issue 16): retry by filter, a dataset's forecast and
right-sizing, and accounting. Each parses, calls one service and replies."""
from __future__ import annotations

from aiohttp import web

from server.api.errors import bad_request
from server.api.params import json_reply
from server.api.routing import ApiRoutes, QueryParam, caller
from server.keys import BODY, STORE
from server.scheduling import accounting, forecast, rightsizing, task_filter
from server.scheduling.datasets import existing_dataset

routes = ApiRoutes("production")


@routes.post("/datasets/{dataset_id}/task_actions/bulk", right="write", body=task_filter.BODY_SCHEMA,
             summary="reset / suspend / hard_reset the tasks matching a filter; dry_run: only count them. "
                     "Reply {count, matched, sample}")
async def bulk_by_filter(request: web.Request) -> web.Response:
    body = request[BODY]
    dataset = await existing_dataset(request.app[STORE], request.match_info["dataset_id"])
    result = await task_filter.bulk_action(request.app[STORE], dataset.dataset_id, body["action"],
                                           task_filter.BulkFilter.parse(body["filter"]),
                                           dry_run=bool(body.get("dry_run", False)))
    return json_reply(result.to_json())


@routes.get("/datasets/{dataset_id}/forecast", right="read",
            summary="completion rate, ETA and CPU/GPU hours left (per task name too)",
            query=[QueryParam("window_hours", "hours of completions the rate is taken over (default 6)",
                              {"type": "number", "exclusiveMinimum": 0, "maximum": 720})])
async def get_forecast(request: web.Request) -> web.Response:
    raw = request.query.get("window_hours", "")
    try:
        window = float(raw) if raw else forecast.WINDOW_HOURS
    except ValueError:
        raise bad_request(f"window_hours must be a number of hours, got {raw[:40]!r}") from None
    if not 0 < window <= 720:
        raise bad_request("window_hours must be above 0 and at most 720")
    dataset = await existing_dataset(request.app[STORE], request.match_info["dataset_id"])
    return json_reply((await forecast.forecast(request.app[STORE], dataset.dataset_id, window_hours=window)).to_json())


@routes.get("/datasets/{dataset_id}/rightsizing", right="read",
            summary="per task name: requested vs used memory, disk, time (p50/p95) and a suggested request")
async def get_rightsizing(request: web.Request) -> web.Response:
    dataset = await existing_dataset(request.app[STORE], request.match_info["dataset_id"])
    rows = await rightsizing.rightsizing(request.app[STORE], dataset.dataset_id)
    return json_reply({"rows": [r.to_json() for r in rows]})


def wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format", "")
    if fmt not in ("", "json", "csv"):
        raise bad_request(f"format must be json or csv, got {fmt[:40]!r}")
    return fmt == "csv" or (not fmt and "text/csv" in request.headers.get("Accept", ""))


@routes.get("/accounting", owner="anyone",
            summary="wall, core and GPU hours per day by dataset, user, group or site (datasets you may read); "
                    "text/csv on Accept: text/csv or format=csv",
            query=[QueryParam("by", "dataset | user | group | site (default dataset)"),
                   QueryParam("since", "ISO date/time (default: 30 days before until)"),
                   QueryParam("until", "ISO date/time (default: now)"),
                   QueryParam("format", "json | csv")])
async def get_accounting(request: web.Request) -> web.Response:
    by = request.query.get("by", "dataset")
    as_csv = wants_csv(request)
    window = accounting.Window.parse(request.query.get("since"), request.query.get("until"))
    rows = await accounting.usage(request.app[STORE], by, window, caller(request))
    if as_csv:
        return web.Response(text=accounting.to_csv(by, rows), content_type="text/csv")
    return json_reply({"by": by, "since": window.since, "until": window.until, "rows": [r.to_json() for r in rows]})
