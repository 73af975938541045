"""Playwright driving Debian's Chromium (Playwright cannot download its own
browser here), plus the store-side "pilot" the browser tests use to run
tasks while a page is open."""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from playwright.async_api import Page, expect

from common.resources import Resources
from server.store import AttemptResult, ClaimedTask, ClaimRequest, FailureClass, NewPilot, Store
from tests.conftest import REPO

if TYPE_CHECKING:
    from tests.web.conftest import WebServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
expect.set_options(timeout=15_000)  # live counts poll every 2 s on a shared, busy test machine
XSS = '<script>alert("x1")</script>"><img src=x onerror=alert("x2")>'


@dataclass
class Tab:
    """A browser page plus everything that must NOT happen on it."""

    page: Page
    server: "WebServer"
    dialogs: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    async def open(self, path: str) -> int:
        reply = await self.page.goto(self.server.url + path)
        assert reply is not None
        return reply.status

    async def sign_in(self, username: str = "alice", role: str = "user",
                      groups: tuple[str, ...] = ("users",)) -> None:
        await self.open("/login")
        await self.page.fill("#token", self.server.token(username, role, groups))
        await self.page.click("form[action='/login'] button[type=submit]")
        await self.page.wait_for_url("**/dataset")

    async def shot(self, name: str) -> pathlib.Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


class StorePilot:
    """Claims and reports tasks straight through the store, as a pilot's
    routes would (this build has no pilots to run them)."""

    def __init__(self, store: Store):
        self.store = store
        self.pilot_id = ""

    async def claim(self) -> ClaimedTask | None:
        if not self.pilot_id:
            self.pilot_id = await self.store.register_pilot(NewPilot(
                resources={"cpu": 8, "gpu": 0, "memory": 16.0, "disk": 100.0, "time": 24.0},
                site="WEBTEST", hostname="node1.example", provider="local"))
        return await self.store.claim(ClaimRequest(pilot_id=self.pilot_id, host="node1.example", site="WEBTEST",
                                                   free=Resources(cpu=8, gpu=0, memory=16.0, disk=100.0, time=24.0)))

    async def complete(self, claimed: ClaimedTask, seconds: float = 90.0, memory: float = 0.7) -> None:
        outcome = await self.store.complete(claimed.task.task_id, claimed.instance_id, AttemptResult(
            time_used=seconds, resources={"memory": memory, "cpu": 0.9}, host="node1.example", site="WEBTEST",
            modules=[{"name": "run", "argv": ["python3", "run.py", "--job", str(claimed.task.job_index)],
                      "exit_code": 0}]))
        assert outcome.applied

    async def fail(self, claimed: ClaimedTask) -> None:
        outcome = await self.store.fail(claimed.task.task_id, claimed.instance_id, AttemptResult(
            time_used=30.0, failure_class=FailureClass.PHYSICS, kind="exit", rule="nonzero-exit",
            reason="run.py exited with 3", exit_codes=[3], host="node1.example", site="WEBTEST"))
        assert outcome.applied
