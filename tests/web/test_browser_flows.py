"""The website in a real headless Chromium: sign in, filter, open a dataset,
submit (invalid, then valid and watched to completion), reset a failed task,
a live log, a config diff, an admin editing a priority."""
from __future__ import annotations

import asyncio
import json

import pytest
from playwright.async_api import expect

from server.store import NewLog, TaskFilter
from tests.web.browser import StorePilot, Tab
from tests.web.conftest import CONFIG, make_dataset

pytestmark = pytest.mark.slow


async def eventually(check, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{check.__name__} never became true")
        await asyncio.sleep(0.1)


async def test_sign_in_filter_and_open_a_dataset(tab: Tab) -> None:
    store = tab.server.store
    await make_dataset(store, description="muon gun, processing")
    suspended = await make_dataset(store, description="nugen, suspended", username="bob", group="simprod")
    await store.set_dataset_status(suspended.dataset_id, "suspended")
    await make_dataset(store, description="corsika by carol", username="carol", group="simprod")
    await tab.sign_in(groups=("users", "simprod"))
    rows = tab.page.locator("#dataset-table tbody tr")
    assert await rows.count() == 3
    assert "corsika by carol" in await rows.nth(0).inner_text()  # newest first
    await tab.shot("dataset-list")
    await tab.page.select_option("#filter-status", ["suspended"])
    await tab.page.click("#apply-filters")
    await tab.page.wait_for_url("**/dataset?status=suspended")
    assert await rows.count() == 1
    assert "bob (simprod)" in await rows.nth(0).inner_text()
    await tab.page.select_option("#filter-status", [])
    await tab.page.select_option("#filter-user", ["alice", "carol"])
    await tab.page.click("#apply-filters")
    assert await rows.count() == 2
    await rows.filter(has_text="muon gun").locator("a").click()
    await tab.page.wait_for_selector("#settings")
    assert await tab.page.text_content("#dataset-description") == "muon gun, processing"
    assert await tab.page.locator("#by-name tbody tr").count() == 2
    await tab.shot("dataset-page")


async def test_submit_invalid_then_valid_and_watch_it_complete(tab: Tab) -> None:
    await tab.sign_in()
    await tab.open("/submit")
    bad = {**CONFIG, "tasks": [{**CONFIG["tasks"][0], "requirements": {"cpu": 1, "memory": "lots"}}]}
    await tab.page.fill("#config", json.dumps(bad, indent=2))
    await tab.page.fill("#jobs_submitted", "3")
    await tab.page.click("#submit-button")
    problem = tab.page.locator("tr.problem").first
    assert await problem.locator(".problem-path").inner_text() == "config['tasks'][0]['requirements']['memory']"
    assert "memory: cannot read size 'lots'" in await problem.locator(".problem-message").inner_text()
    await problem.locator(".problem-line").click()  # selects the field's line in the editor
    selected = await tab.page.locator("#config").evaluate("a => a.value.substring(a.selectionStart, a.selectionEnd)")
    assert selected.strip() == '"memory": "lots"'
    await tab.shot("submit-invalid")
    await tab.page.fill("#config", json.dumps(CONFIG, indent=2))
    await tab.page.fill("#description", "watched live")
    await tab.page.click("#submit-button")
    await tab.page.wait_for_url("**/dataset/*", timeout=20_000)
    assert await tab.page.text_content("#dataset-description") == "watched live"
    complete_cell = tab.page.locator("#task-counts [data-live-status=complete]")
    assert await complete_cell.inner_text() == "0"
    pilot = StorePilot(tab.server.store)
    done = 0
    while done < 6:  # 3 jobs x 2 tasks; the server's loops release and queue them
        claimed = await pilot.claim()
        if claimed is None:
            await asyncio.sleep(0.1)
            continue
        await pilot.complete(claimed)
        done += 1
        if done == 3:  # the open page follows without a reload
            await expect(complete_cell).to_have_text("3")
    await expect(complete_cell).to_have_text("6")
    await expect(tab.page.locator("[data-live-group=dataset_status]")).to_have_text("complete", timeout=20_000)
    by_name = tab.page.locator("#by-name [data-live-name=filter][data-live-status=complete]")
    assert await by_name.inner_text() == "3"
    await expect(tab.page.locator("#stats [data-live-name=generate][data-live-status=count]")).to_have_text("3")
    await expect(tab.page.locator("#stats [data-live-name=generate][data-live-status=avg_hrs]")).to_have_text("0.025")
    await tab.shot("dataset-complete")
    await tab.page.click("text=Plots")
    await tab.page.wait_for_selector("#plot-progress svg polyline")
    assert await tab.page.locator("figure.plot-memory svg rect").count() > 0
    await tab.shot("dataset-plots")


async def test_reset_a_failed_task(tab: Tab) -> None:
    store = tab.server.store
    dataset = await make_dataset(store, jobs=1, names=("generate",))
    pilot = StorePilot(store)
    claimed = None
    while claimed is None:
        claimed = await pilot.claim()
        await asyncio.sleep(0.05)
    await pilot.fail(claimed)
    task_id = claimed.task.task_id
    await tab.sign_in()
    await tab.open(f"/dataset/{dataset.dataset_id}/task/{task_id}")
    assert await tab.page.text_content("#task-status") == "failed"
    assert "nonzero-exit" in await tab.page.inner_text("#attempt-1")
    await tab.shot("task-failed")
    await tab.page.click("#task-reset")
    await tab.page.wait_for_selector("text=reset requested")

    async def reset_done() -> bool:
        task = await store.get_task(task_id)
        return task is not None and task.status != "failed"
    await eventually(reset_done)
    await tab.page.reload()
    assert await tab.page.text_content("#task-status") in ("idle", "waiting", "queued")


async def test_live_log_tail(tab: Tab) -> None:
    store = tab.server.store
    dataset = await make_dataset(store, jobs=1, names=("generate",))
    pilot = StorePilot(store)
    claimed = None
    while claimed is None:
        claimed = await pilot.claim()
        await asyncio.sleep(0.05)
    log_id = await store.add_log(NewLog(name="stdout", data="starting\n", dataset_id=dataset.dataset_id,
                                        task_id=claimed.task.task_id, attempt=claimed.attempt))
    await tab.sign_in()
    await tab.open(f"/dataset/{dataset.dataset_id}/log/{log_id}")
    assert "live" in await tab.page.text_content("#log-state")
    for i in range(3):
        await store.append_log(log_id, f"event {i} done\n")
    await store.append_log(log_id, XSS_LINE)
    await expect(tab.page.locator("#log-text")).to_contain_text("event 2 done")
    await expect(tab.page.locator("#log-text")).to_contain_text("onerror")
    assert XSS_LINE in await tab.page.text_content("#log-text")
    assert await tab.page.locator("#log-text img").count() == 0
    await tab.shot("log-live")
    await pilot.complete(claimed)
    await expect(tab.page.locator("#log-state")).to_have_text("finished")


XSS_LINE = '<script>alert("log")</script>"><img src=x onerror=alert("log")>\n'


async def test_config_diff(tab: Tab) -> None:
    store = tab.server.store
    dataset = await make_dataset(store)
    edited = json.loads(json.dumps(CONFIG))
    edited["tasks"][1]["requirements"]["memory"] = 3.5
    await store.add_config_version(dataset.dataset_id, edited, "alice", "more memory for filter")
    await tab.sign_in()
    await tab.open(f"/dataset/{dataset.dataset}")
    await tab.page.click("#diff-button")
    await tab.page.wait_for_selector("#diff")
    added = await tab.page.locator("#diff .diff-add").all_inner_texts()
    removed = await tab.page.locator("#diff .diff-del").all_inner_texts()
    assert any('"memory": 3.5' in line for line in added)
    assert any('"memory": 1.0' in line for line in removed)
    await tab.shot("config-diff")


async def test_admin_edits_a_user_priority(tab: Tab) -> None:
    store = tab.server.store
    await make_dataset(store)
    pilot = StorePilot(store)
    while await pilot.claim() is None:
        await asyncio.sleep(0.05)
    await tab.sign_in("root", role="admin", groups=("admin",))
    await tab.open("/admin")
    assert "WEBTEST" in await tab.page.inner_text("#pilots")
    await tab.page.fill("input[data-user=alice]", "0.9")
    await tab.page.click("button[data-user=alice]")
    await tab.page.wait_for_selector("#notice")
    assert (await store.get_user("alice")).priority == 0.9
    assert await tab.page.input_value("input[data-user=alice]") == "0.9"
    await tab.shot("admin")
    queued = await store.task_counts_by_status(TaskFilter())
    assert queued


async def test_reading_works_with_javascript_off(browser, web_server) -> None:
    dataset = await make_dataset(web_server.store, jobs=2)
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        noscript = Tab(page, web_server)
        await noscript.sign_in()
        await noscript.open("/dataset")
        await page.click(f"#dataset-table a[href='/dataset/{dataset.dataset_id}']")
        await page.wait_for_selector("#by-name")
        counts = await page.locator("#task-counts td").all_inner_texts()
        assert sum(int(c) for c in counts) == 4
        await page.click("text=Tasks")
        assert await page.locator("#task-count-table tbody tr").count() == 2
        await noscript.open("/submit")
        await page.fill("#config", json.dumps(CONFIG))
        await page.click("#submit-button")  # the status page refreshes itself (meta refresh) to the dataset
        await page.wait_for_url("**/dataset/*", timeout=20_000)
        assert await page.text_content("#dataset-description") == "web test"
    finally:
        await context.close()
