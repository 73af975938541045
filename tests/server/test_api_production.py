"""Production routes through REST (issue 16 items 1, 4, 5): retry by filter
with its dry run, the forecast, right-sizing and accounting (JSON and CSV)."""
from __future__ import annotations

import datetime

import pytest
import requests

from tests.server.production_data import production_history

BAD = pytest.mark.parametrize("body,problem", [
    ({"action": "nuke", "filter": {}}, "action"),
    ({"action": "reset", "filter": {"colour": "red"}}, "colour"),
    ({"action": "reset", "filter": {"status": "broken"}}, "status"),
    ({"action": "reset", "filter": {"since": "yesterday"}}, "since"),
    ({"action": "reset", "filter": {"job_index": {"min": 5, "max": 2}}}, "job_index"),
    ({"action": "reset"}, "filter"),
])


async def _error(coro) -> tuple[int, str]:
    with pytest.raises(requests.HTTPError) as info:
        await coro
    return info.value.response.status_code, info.value.response.text


async def test_retry_by_filter_dry_run_then_reset(server):
    h = await production_history(server.store)
    alice = server.rest(server.token("alice"))
    path = f"/datasets/{h.dataset_id}/task_actions/bulk"
    dry = await alice.request("POST", path, {"action": "reset", "dry_run": True,
                                             "filter": {"status": "failed", "kind": "memory", "site": "SiteA"}})
    assert dry["count"] == 4 and [r["job_index"] for r in dry["sample"]] == [0, 1, 2, 3]
    assert {(r["host"], r["rule"], r["failure_class"]) for r in dry["sample"]} == {("bad1", "oom", "physics")}
    assert {t.status for t in [await server.store.get_task(i) for i in h.task_ids[:4]]} == {"failed"}  # unchanged
    # filters narrow as named: job range, host, time window, name
    assert (await alice.request("POST", path, {"action": "reset", "dry_run": True, "filter": {
        "status": "failed", "job_index": {"min": 1, "max": 4}}}))["count"] == 4
    assert (await alice.request("POST", path, {"action": "reset", "dry_run": True, "filter": {
        "host": "n2"}}))["count"] == 2
    assert (await alice.request("POST", path, {"action": "reset", "dry_run": True, "filter": {
        "status": "failed", "until": "2001-01-01"}}))["count"] == 0
    assert (await alice.request("POST", path, {"action": "reset", "dry_run": True, "filter": {
        "name": "t0", "status": ["failed", "complete"]}}))["count"] == 10
    # by dataset number too
    assert (await alice.request("POST", f"/datasets/{h.number}/task_actions/bulk", {
        "action": "reset", "dry_run": True, "filter": {"kind": "transfer"}}))["count"] == 2

    done = await alice.request("POST", path, {"action": "reset", "filter": {"status": "failed", "kind": "memory"}})
    assert done["count"] == 4 and done["matched"] == 4
    tasks = [await server.store.get_task(i) for i in h.task_ids]
    assert [t.status for t in tasks] == ["idle"] * 4 + ["failed"] * 2 + ["complete"] * 4
    jobs = [await server.store.get_job(t.job_id) for t in tasks[:4]]
    assert {j.status for j in jobs} == {"processing"}  # rolled up at once
    assert (await server.store.get_dataset(h.dataset_id)).status == "processing"
    # suspend the transfer failures, then hard-reset them
    assert (await alice.request("POST", path, {"action": "suspend", "filter": {"kind": "transfer"}}))["count"] == 0
    hard = await alice.request("POST", path, {"action": "hard_reset", "filter": {"kind": "transfer"}})
    assert hard["count"] == 2
    assert [(await server.store.get_task(i)).failures for i in h.task_ids[4:6]] == [0, 0]


@BAD
async def test_retry_by_filter_bad_input(server, body, problem):
    h = await production_history(server.store)
    status, text = await _error(server.rest(server.token("alice")).request(
        "POST", f"/datasets/{h.dataset_id}/task_actions/bulk", body))
    assert status == 400 and problem in text


async def test_retry_by_filter_needs_write_right(server):
    h = await production_history(server.store)
    body = {"action": "reset", "dry_run": True, "filter": {"status": "failed"}}
    status, _ = await _error(server.rest(server.token("mallory", groups=["other"])).request(
        "POST", f"/datasets/{h.dataset_id}/task_actions/bulk", body))
    assert status == 403
    status, _ = await _error(server.rest(server.token("root", role="admin")).request(
        "POST", "/datasets/nope/task_actions/bulk", body))
    assert status == 404


async def test_forecast_and_rightsizing(server):
    h = await production_history(server.store)
    alice = server.rest(server.token("alice"))
    await alice.request("POST", f"/datasets/{h.dataset_id}/task_actions/bulk",
                        {"action": "reset", "filter": {"status": "failed"}})
    f = await alice.request("GET", f"/datasets/{h.dataset_id}/forecast")
    assert f["tasks_left"] == 6 and f["tasks_complete"] == 4 and f["completed_in_window"] == 4
    assert f["rate_per_hour"] == pytest.approx(4 / 6) and f["eta_hours"] == pytest.approx(9.0)
    # 6 tasks left x 1 h mean x 2 cores
    assert f["cpu_hours_left"] == pytest.approx(12.0) and f["gpu_hours_left"] == 0
    assert f["by_name"][0]["name"] == "t0" and f["by_name"][0]["sampled"] == 4
    wide = await alice.request("GET", f"/datasets/{h.dataset_id}/forecast", {"window_hours": "24"})
    assert wide["rate_per_hour"] == pytest.approx(4 / 24)
    status, text = await _error(alice.request("GET", f"/datasets/{h.dataset_id}/forecast", {"window_hours": "x"}))
    assert status == 400 and "window_hours" in text

    rows = (await alice.request("GET", f"/datasets/{h.dataset_id}/rightsizing"))["rows"]
    memory = next(r for r in rows if r["resource"] == "memory")
    assert (memory["requested"], memory["p50"], memory["p95"], memory["suggested"]) == (4, 1.3, 1.3, 1.6)
    assert memory["advice"].startswith("t0 tasks use 1.3 GB memory at p95 of the 4 GB they ask")
    status, _ = await _error(server.rest(server.token("mallory", groups=["other"])).request(
        "GET", f"/datasets/{h.dataset_id}/forecast"))
    assert status == 403


async def test_accounting_json_csv_and_rights(server):
    await production_history(server.store)
    h = await production_history(server.store, owner="bob", group="other")
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    alice = server.rest(server.token("bob", groups=["other"]))
    by_site = await alice.request("GET", "/accounting", {"by": "site", "since": today})
    rows = {r["key"]: r for r in by_site["rows"]}
    # bob (not in "users") reads only his dataset: SiteA 4 x 0.5 h; SiteB 2 x 0.5 h + 4 x 1 h; 2 cores each
    assert set(rows) == {"SiteA", "SiteB"} and {r["day"] for r in rows.values()} == {today}
    assert rows["SiteA"]["wall_hours"] == pytest.approx(2.0) and rows["SiteA"]["core_hours"] == pytest.approx(4.0)
    assert rows["SiteB"]["wall_hours"] == pytest.approx(5.0) and rows["SiteB"]["attempts"] == 6
    by_dataset = await alice.request("GET", "/accounting", {"by": "dataset", "since": today})
    assert [r["key"] for r in by_dataset["rows"]] == [str(h.number)]
    admin = server.rest(server.token("root", role="admin"))
    by_user = await admin.request("GET", "/accounting", {"by": "user", "since": today})
    assert {r["key"]: r["core_hours"] for r in by_user["rows"]} == {"alice": 14.0, "bob": 14.0}
    by_group = await admin.request("GET", "/accounting", {"by": "group", "since": today})
    assert {r["key"] for r in by_group["rows"]} == {"users", "other"}

    url = f"{server.url}/accounting"
    headers = {"Authorization": f"Bearer {server.token('root', role='admin')}"}
    for kwargs in ({"params": {"by": "user", "since": today, "format": "csv"}},
                   {"params": {"by": "user", "since": today}, "headers": {**headers, "Accept": "text/csv"}}):
        reply = await _get(url, headers=kwargs.pop("headers", headers), **kwargs)
        assert reply.headers["Content-Type"].startswith("text/csv")
        lines = reply.text.splitlines()
        assert lines[0] == "day,user,wall_hours,core_hours,gpu_hours,attempts"
        assert f"{today},alice,7.0,14.0,0.0,10" in lines
    for query, word in (({"by": "planet"}, "by"), ({"since": "soon"}, "since"), ({"format": "xml"}, "format"),
                        ({"since": "2020-01-01", "until": "2024-01-01"}, "days"),
                        ({"since": "2024-01-02", "until": "2024-01-01"}, "before")):
        status, text = await _error(alice.request("GET", "/accounting", query))
        assert status == 400 and word in text


async def _get(url: str, **kwargs) -> requests.Response:
    import asyncio
    return await asyncio.to_thread(requests.get, url, timeout=30, **kwargs)
