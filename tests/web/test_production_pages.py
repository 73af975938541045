"""The production pages in a real Chromium (issue 16): retry by filter from
the task list (filter, count and sample, confirm), the dataset page's
forecast and right-sizing, the admin dashboard's hours left, and the
/accounting/plots page (plot, table, CSV; /accounting itself is the REST route). Screenshots land in
test-artifacts/screenshots/."""
from __future__ import annotations

import datetime

import pytest

from tests.server.production_data import production_history
from tests.web.browser import Tab

pytestmark = pytest.mark.slow


async def test_retry_by_filter_from_the_task_list(tab: Tab) -> None:
    store = tab.server.store
    h = await production_history(store)
    await tab.sign_in()
    status = await tab.open(f"/dataset/{h.dataset_id}/task")
    assert status == 200, await tab.page.inner_text("body")
    await tab.page.click("#retry-by-filter")
    await tab.page.wait_for_selector("#retry-filter")
    await tab.page.fill("#filter-kind", "memory")
    await tab.page.fill("#filter-jobs", "1-3")
    await tab.page.click("#retry-preview")
    await tab.page.wait_for_selector("#retry-result")
    assert await tab.page.text_content("#match-count") == "3"
    assert await tab.page.locator("#retry-sample tbody tr").count() == 3
    assert "bad1" in await tab.page.inner_text("#retry-sample")
    await tab.shot("retry-by-filter-dry-run")
    assert [(await store.get_task(i)).status for i in h.task_ids[:4]] == ["failed"] * 4  # nothing changed yet
    await tab.page.click("#retry-apply")  # the confirm box is required: nothing is posted
    assert [(await store.get_task(i)).status for i in h.task_ids[:4]] == ["failed"] * 4
    await tab.page.check("#retry-sure")
    await tab.page.click("#retry-apply")
    await tab.page.wait_for_selector("#notice")
    assert "reset: 3 of 3 matching task(s) changed" in await tab.page.text_content("#notice")
    after = [(await store.get_task(i)).status for i in h.task_ids[:4]]  # the server's loops may queue them
    assert after[0] == "failed" and set(after[1:]) <= {"idle", "waiting", "queued"}
    assert await tab.page.text_content("#match-count") == "0"  # the same filter, after: no failed ones left
    await tab.shot("retry-by-filter-done")
    # bad input is a page naming the problem, never a 500
    assert await tab.open(f"/dataset/{h.dataset_id}/retry?preview=1&jobs=9-2") == 400
    assert "9 is above 2" in await tab.page.inner_text("body")
    assert await tab.open(f"/dataset/{h.dataset_id}/retry?preview=1&since=someday") == 400


async def test_dataset_forecast_sizing_dashboard_and_accounting(tab: Tab) -> None:
    store = tab.server.store
    h = await production_history(store)
    await tab.sign_in(username="root", role="admin")
    await tab.open(f"/dataset/{h.number}")
    assert await tab.page.text_content("#tasks-left") == "0"
    assert "0.67 tasks/h" in await tab.page.text_content("#rate")
    assert "t0 tasks use 1.3 GB memory at p95 of the 4 GB they ask; suggested request 1.6 GB" in \
        await tab.page.inner_text("#rightsizing")
    await tab.shot("dataset-forecast-sizing")
    await tab.open("/admin")
    assert await tab.page.text_content("#cpu-hours-left") == "0.0"

    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    await tab.open("/accounting/plots")
    await tab.page.select_option("#accounting-by", "site")
    await tab.page.fill("#accounting-since", today)
    await tab.page.click("#accounting-show")
    await tab.page.wait_for_url("**/accounting/plots?by=site*")
    totals = await tab.page.inner_text("#accounting-totals")
    assert "SiteA\t2.00\t4.00\t0.00\t4" in totals and "SiteB\t5.00\t10.00\t0.00\t6" in totals
    assert await tab.page.locator("#accounting-plot svg rect").count() >= 2
    await tab.shot("accounting-by-site")
    href = await tab.page.get_attribute("#accounting-csv", "href")
    csv = await tab.page.evaluate("url => fetch(url).then(r => r.text())", href)
    assert csv.splitlines()[0] == "day,site,wall_hours,core_hours,gpu_hours,attempts"
    assert f"{today},SiteA,2.0,4.0,0.0,4" in csv.splitlines()
    assert await tab.open("/accounting/plots?by=planet") == 400
