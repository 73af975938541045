"""A real frazil server (REST API + website) on 127.0.0.1 with a real SQLite
store and its background loops on, plus helpers to sign in and to make
datasets directly in the store."""
from __future__ import annotations

import html
import re
import shutil
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Dialog, async_playwright

from server.app import create_app
from server.auth import default_rights
from server.keys import TOKENS
from server.settings import Settings
from server.store import Dataset, NewDataset, NewJob, NewTask, Store, open_store
from tests.server.conftest import free_port
from tests.web.browser import ARGS, CHROMIUM, Tab


@dataclass
class WebServer:
    url: str
    app: web.Application
    store: Store

    def token(self, username: str = "alice", role: str = "user", groups: Iterable[str] = ("users",)) -> str:
        return self.app[TOKENS].create(username, role=role, groups=list(groups))


@pytest.fixture
async def web_server(tmp_path) -> AsyncIterator[WebServer]:
    settings = Settings(db=f"sqlite:///{tmp_path}/frazil.db", data_dir=str(tmp_path / "data"), port=free_port(),
                        provider="none", loops=True, loop_interval_seconds=0.2, retry_delay_seconds=0)
    store = await open_store(settings.db)
    app = create_app(settings, store=store)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    try:
        yield WebServer(f"http://127.0.0.1:{settings.port}", app, store)
    finally:
        await runner.cleanup()
        await store.close()


def hidden(page: str, name: str = "csrf_token") -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} field in the page"
    return html.unescape(match.group(1))


async def sign_in(server: WebServer, username: str = "alice", role: str = "user",
                  groups: Iterable[str] = ("users",)) -> aiohttp.ClientSession:
    """An HTTP client holding a website session (cookies kept for 127.0.0.1)."""
    client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with client.get(f"{server.url}/login") as reply:
        form = await reply.text()
    async with client.post(f"{server.url}/login", data={"csrf_token": hidden(form), "next": "/dataset",
                                                        "token": server.token(username, role, groups)},
                           allow_redirects=False) as reply:
        assert reply.status == 303, await reply.text()
    return client


async def csrf_of(client: aiohttp.ClientSession, url: str) -> str:
    async with client.get(url) as reply:
        return hidden(await reply.text())


CONFIG: dict[str, Any] = {
    "version": 3.2, "description": "web test",
    "tasks": [{"name": name, "requirements": {"cpu": 1, "memory": 1.0},
               "trays": [{"modules": [{"src": "run.py", "args": "--job $(job)"}]}]} for name in ("generate", "filter")],
}


async def make_dataset(store: Store, *, description: str = "a dataset", username: str = "alice",
                       group: str = "users", jobs: int = 2, names: tuple[str, ...] = ("generate", "filter"),
                       config: dict[str, Any] | None = None) -> Dataset:
    """A dataset with its rights, a config version and all its jobs and tasks (idle).

    It is created with no jobs submitted and raised once the jobs exist, so the
    server's materializer never races these hand-made jobs."""
    dataset = await store.create_dataset(NewDataset(description=description, jobs_submitted=0,
                                                    tasks_per_job=len(names), group=group, username=username))
    await store.set_dataset_rights(dataset.dataset_id, default_rights(username, group))
    await store.ensure_user(username)
    if config is None:
        config = {**CONFIG, "tasks": [{**CONFIG["tasks"][0], "name": n} for n in names]}
    await store.add_config_version(dataset.dataset_id, config, username, "submitted")
    new_jobs = []
    for index in range(jobs):
        tasks = [NewTask(name=n, task_index=i) for i, n in enumerate(names)]
        for before, after in zip(tasks, tasks[1:]):
            after.depends = [before.task_id]
        new_jobs.append(NewJob(job_index=index, tasks=tasks))
    await store.create_jobs(dataset.dataset_id, new_jobs, config_version=1)
    return await store.set_jobs_submitted(dataset.dataset_id, jobs)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test-deps does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def tab(browser: Browser, web_server: WebServer) -> AsyncIterator[Tab]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    found = Tab(page, web_server)

    async def on_dialog(dialog: Dialog) -> None:
        found.dialogs.append(dialog.message)
        await dialog.dismiss()
    page.on("dialog", on_dialog)
    page.on("console", lambda msg: found.csp_violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    try:
        yield found
        assert found.dialogs == [], f"a script ran: {found.dialogs}"
        assert found.csp_violations == [], f"the page broke its own CSP: {found.csp_violations}"
    finally:
        await context.close()
