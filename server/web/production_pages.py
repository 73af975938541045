"""Production pages (issue 16): retry by filter from the task list (filter,
dry-run count and sample, confirm), and the accounting page, /accounting/plots (plot, table,
CSV). The dataset page's forecast and right-sizing come from
:func:`dataset_extras`. Each calls the same services as the REST API."""
from __future__ import annotations

import asyncio
from typing import Any, Mapping
from urllib.parse import urlencode

from aiohttp import web

from common import states
from server.keys import STORE
from server.scheduling import accounting, forecast, rightsizing, task_filter
from server.store import Store
from server.web import plots
from server.web.framework import PageRoutes, can_write, dataset_for, form_data, render, session_of

routes = PageRoutes()
TEXT_FIELDS = (("class", "failure_class"), ("kind", "kind"), ("rule", "rule"), ("site", "site"), ("host", "host"),
               ("pilot", "pilot_id"), ("name", "name"), ("since", "since"), ("until", "until"))
FORM_FIELDS = ("status", "jobs", "action", *(f for f, _ in TEXT_FIELDS))
ACTION_LABELS = {"reset": "Reset", "suspend": "Suspend", "hard_reset": "Hard reset"}


def _filter(fields: Mapping[str, list[str]]) -> dict[str, Any]:
    """The REST filter from the form's fields (empty ones left out)."""
    flt: dict[str, Any] = {}
    statuses = [s for raw in fields.get("status", []) for s in raw.split("|") if s]
    if statuses:
        flt["status"] = statuses
    for field, key in TEXT_FIELDS:
        value = next((v.strip() for v in fields.get(field, []) if v.strip()), "")
        if value:
            flt[key] = value
    jobs = next((v for v in fields.get("jobs", []) if v.strip()), "")
    if jobs:
        flt["job_index"] = task_filter.parse_job_range(jobs)
    return flt


def _action(value: str) -> str:
    return value if value in task_filter.ACTIONS else "reset"


@routes.page("/dataset/{key}/retry")
async def retry_page(request: web.Request) -> web.StreamResponse:
    """The filter form; with ``preview`` the dry run's count and sample, and the confirm form."""
    dataset = await dataset_for(request, request.match_info["key"])
    fields = {name: request.query.getall(name, []) for name in FORM_FIELDS}
    if not fields["status"] and "preview" not in request.query:
        fields["status"] = ["failed"]
    action = _action(request.query.get("action", "reset"))
    result = None
    if "preview" in request.query:
        result = await task_filter.bulk_action(request.app[STORE], dataset.dataset_id, action,
                                               task_filter.BulkFilter.parse(_filter(fields)), dry_run=True)
    query = urlencode([(k, v) for k in FORM_FIELDS for v in fields[k] if v and k != "action"])
    return render(request, "retry.html", dataset=dataset, fields=fields, action=action, result=result,
                  statuses=states.TASK_STATUSES, actions=ACTION_LABELS, query=query,
                  writable=await can_write(request, dataset), message=request.query.get("message", ""))


@routes.page("/dataset/{key}/retry", method="POST")
async def retry_apply(request: web.Request) -> web.StreamResponse:
    dataset = await dataset_for(request, request.match_info["key"], "write")
    form = await form_data(request)
    posted = await request.post()
    fields = {name: [v for v in posted.getall(name, []) if isinstance(v, str)] for name in FORM_FIELDS}
    action = _action(form.get("action", "reset"))
    result = await task_filter.bulk_action(request.app[STORE], dataset.dataset_id, action,
                                           task_filter.BulkFilter.parse(_filter(fields)), dry_run=False)
    message = f"{action}: {result.count} of {result.matched} matching task(s) changed"
    params = [(k, v) for k in FORM_FIELDS for v in fields[k] if v and k != "action"]
    raise web.HTTPSeeOther(f"/dataset/{dataset.dataset_id}/retry?" +
                           urlencode([*params, ("action", action), ("preview", "1"), ("message", message)]))


async def dataset_extras(store: Store, dataset_id: str, by_name: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The dataset page's forecast and right-sizing (bounded reads, see the
    services); ``by_name``: the page's shared counts, not counted again."""
    f, sizing = await asyncio.gather(forecast.forecast(store, dataset_id, counts=by_name),
                                     rightsizing.rightsizing(store, dataset_id))
    return {"forecast": f.to_json(), "sizing": [s.to_json() for s in sizing]}


def _window(request: web.Request) -> tuple[str, accounting.Window]:
    by = request.query.get("by", "dataset")
    return by, accounting.Window.parse(request.query.get("since") or None, request.query.get("until") or None)


@routes.page("/accounting/plots")
async def accounting_page(request: web.Request) -> web.StreamResponse:
    by, window = _window(request)
    rows = await accounting.usage(request.app[STORE], by, window, session_of(request).identity)
    days = sorted({r.day for r in rows})
    keys = sorted({r.key for r in rows})
    series = {key: {r.day: r.core_hours for r in rows if r.key == key} for key in keys}
    plot = plots.stacked_bars(days, series, title=f"Core-hours per day by {by}", y_label="core-hours")
    gpu = {key: {r.day: r.gpu_hours for r in rows if r.key == key} for key in keys}
    gpu_plot = plots.stacked_bars(days, gpu, title=f"GPU-hours per day by {by}", y_label="GPU-hours") \
        if any(r.gpu_hours for r in rows) else None
    # The CSV covers the same window; an open end stays open ("until now" when it is fetched):
    # cut to seconds, this page's "now" would drop what ended later in the same second.
    wanted = {"by": by, "since": window.since[:19]}
    if request.query.get("until"):
        wanted["until"] = window.until[:19]
    query = urlencode(wanted)
    return render(request, "accounting.html", by=by, choices=accounting.BY, window=window, rows=rows,
                  totals=accounting.totals(rows), plot=plot, gpu_plot=gpu_plot, csv_query=query,
                  since=request.query.get("since", window.since[:10]), until=request.query.get("until", ""))


@routes.page("/accounting/plots.csv")
async def accounting_csv(request: web.Request) -> web.StreamResponse:
    by, window = _window(request)
    rows = await accounting.usage(request.app[STORE], by, window, session_of(request).identity)
    return web.Response(text=accounting.to_csv(by, rows), content_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="frazil-accounting-{by}.csv"'})

