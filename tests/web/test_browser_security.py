"""In a real Chromium: hostile text renders as text on every page, and a
plain user can neither see admin pages nor act on another group's dataset."""
from __future__ import annotations

import asyncio
import json

import pytest
from playwright.async_api import expect

from server.store import NewLog, TaskFilter
from tests.web.browser import XSS, StorePilot, Tab
from tests.web.conftest import CONFIG, make_dataset

pytestmark = pytest.mark.slow


async def test_hostile_text_renders_as_text_everywhere(tab: Tab) -> None:
    store = tab.server.store
    config = json.loads(json.dumps(CONFIG))
    config["tasks"][0]["trays"][0]["modules"][0]["args"] = XSS
    config["tasks"][0]["name"] = XSS
    dataset = await make_dataset(store, description=XSS, jobs=1, names=(XSS, "filter"), config=config)
    await store.add_config_version(dataset.dataset_id, {**config, "description": XSS + " v2"}, "alice", XSS)
    pilot = StorePilot(store)
    claimed = None
    while claimed is None:
        claimed = await pilot.claim()
        await asyncio.sleep(0.05)
    assert claimed.task.name == XSS
    log_id = await store.add_log(NewLog(name=XSS, data=f"first line {XSS}\n", dataset_id=dataset.dataset_id,
                                        task_id=claimed.task.task_id, attempt=claimed.attempt))
    await tab.sign_in()
    did = dataset.dataset_id
    pages = {
        "/dataset": "#dataset-table",
        f"/dataset/{did}": "#dataset-description",
        f"/dataset/{did}/task": "#task-count-table",
        f"/dataset/{did}/task?status=processing": "#task-table",
        f"/dataset/{did}/task/{claimed.task.task_id}": "#task-name",
        f"/dataset/{did}/log/{log_id}": "#log-text",
        f"/config?dataset_id={did}": "#config-text",
        f"/config?dataset_id={did}&a=1&b=2": "#diff",
        f"/config?dataset_id={did}&edit=1": "#config",
    }
    for path, selector in pages.items():
        assert await tab.open(path) == 200, path
        body = await tab.page.inner_text("body") if selector != "#config" else \
            await tab.page.input_value("#config")
        # (in JSON views the quotes are escaped, so look for the parts without quotes)
        assert "<script>alert(" in body and "<img src=x onerror=alert(" in body, f"{path} hides the text"
        assert await tab.page.locator("img[src=x], main script").count() == 0, f"{path} made markup of text"
    await store.append_log(log_id, f"later {XSS}\n")  # also through the live tail
    await tab.open(f"/dataset/{did}/log/{log_id}")
    await store.append_log(log_id, f"live {XSS}\n")
    await expect(tab.page.locator("#log-text")).to_contain_text(f"live {XSS}")
    assert await tab.page.locator("#log-text img").count() == 0
    await tab.shot("xss-log")
    await pilot.complete(claimed)  # its name now titles the runtime and memory plots
    await tab.open(f"/dataset/{did}/plots")
    assert "<script>alert(" in await tab.page.inner_text(".plot-runtime")
    assert await tab.page.locator("img[src=x], main script").count() == 0
    await tab.open(f"/dataset/{did}")
    await tab.shot("xss-dataset")
    assert tab.dialogs == []


async def test_plain_user_cannot_see_admin_or_act_on_another_groups_dataset(tab: Tab) -> None:
    store = tab.server.store
    theirs = await make_dataset(store, description="simprod's", username="bob", group="simprod")
    mine = await make_dataset(store, description="mine")
    await tab.sign_in()
    assert await tab.open("/admin") == 403
    assert "for administrators" in await tab.page.inner_text("#error-message")
    await tab.shot("admin-forbidden")
    assert await tab.page.locator("header nav >> text=Admin").count() == 0
    assert await tab.open(f"/dataset/{theirs.dataset_id}") == 200  # readable by "users"
    assert await tab.page.locator("#action-suspend").count() == 0
    assert await tab.page.locator("#priority-form").count() == 0
    assert await tab.open(f"/config?dataset_id={theirs.dataset_id}&edit=1") == 403
    # A hand-made form posted with this user's own valid CSRF token is still refused.
    await tab.open(f"/dataset/{mine.dataset_id}")
    token = await tab.page.input_value("#priority-form input[name=csrf_token]")
    for path, form in ((f"/dataset/{theirs.dataset_id}/action", {"action": "suspend"}),
                       (f"/dataset/{theirs.dataset_id}/priority", {"priority": "9"}),
                       ("/admin/users/alice/priority", {"priority": "1"})):
        reply = await tab.page.request.post(tab.server.url + path, form={**form, "csrf_token": token})
        assert reply.status == 403, path
    first = (await store.list_tasks(TaskFilter(dataset_id=theirs.dataset_id))).rows[0]["task_id"]
    reply = await tab.page.request.post(f"{tab.server.url}/dataset/{theirs.dataset_id}/task/{first}/action",
                                        form={"action": "suspend", "csrf_token": token})
    assert reply.status == 403
    assert (await store.get_dataset(theirs.dataset_id)).status == "processing"
    assert (await store.get_dataset(theirs.dataset_id)).priority == 0.5
    assert (await store.task_counts_by_status(TaskFilter(dataset_id=theirs.dataset_id))).get("suspended", 0) == 0
    # ... while the same action on their own dataset works from the page.
    await tab.page.click("#action-suspend")
    await expect(tab.page.locator("[data-live-group=dataset_status]")).to_have_text("suspended")
