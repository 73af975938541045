"""Issue 16 item 2: alert subscriptions over REST, and the alerts loop's round
on a real store delivering to a local HTTP receiver (signature checked) and
a local SMTP server (aiosmtpd): each event once, retries with back-off."""
from __future__ import annotations

import dataclasses
import email
import hashlib
import hmac
import json
import time
from typing import Any, AsyncIterator

import pytest
import requests
from aiohttp import web
from aiosmtpd.controller import Controller

from common.resources import Resources
from server.scheduling.alerts import AlertWatch
from server.settings import Settings
from server.store import AttemptResult, ClaimRequest, NewPilot
from tests.server.conftest import RunningServer, free_port
from tests.server.test_api_pilot_support import make_dataset

SECRET = "a-very-secret-hmac-key"


@dataclasses.dataclass
class Receiver:
    url: str
    seen: list[tuple[dict[str, Any], str]]
    fail_next: int = 0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver("", [])

    async def hook(request: web.Request) -> web.Response:
        if got.fail_next:
            got.fail_next -= 1
            return web.Response(status=503)
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        got.seen.append((json.loads(body), "valid" if request.headers.get("X-Frazil-Signature") == expected
                         else "invalid"))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    got.url = f"http://127.0.0.1:{port}/hook"
    yield got
    await runner.cleanup()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def mailbox(server_settings: Settings) -> Any:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    server_settings.smtp_host, server_settings.smtp_port = "127.0.0.1", controller.port
    server_settings.alert_retry_seconds = 10.0
    yield box
    controller.stop()


async def test_rest_subscriptions(server: RunningServer, receiver: Receiver) -> None:
    alice, bob = server.rest(server.token("alice")), server.rest(server.token("bob"))
    mine = await make_dataset(server.store, owner="alice")
    made = await alice.request("POST", "/users/alice/alerts", {
        "events": ["complete", "stalled"], "dataset_id": mine.dataset.dataset_id, "webhook_url": receiver.url,
        "webhook_secret": SECRET, "stalled_hours": 2})
    assert made["events"] == ["complete", "stalled"] and made["webhook_secret"] is True  # never echoed
    [listed] = (await alice.request("GET", "/users/alice/alerts"))["alerts"]
    assert listed["subscription_id"] == made["subscription_id"] and listed["recent"] == []
    bad_bodies = [{"events": []}, {"events": ["weather"], "email": "a@b.c"}, {"events": ["complete"]},
                  {"events": ["complete"], "webhook_url": "ftp://x"}, {"events": ["complete"], "email": "nobody"},
                  {"events": ["complete"], "email": "a@b.c", "webhook_secret": "short"},
                  {"events": ["complete"], "email": "a@b.c", "extra": 1}]
    for body in bad_bodies:
        with pytest.raises(requests.HTTPError) as err:
            await alice.request("POST", "/users/alice/alerts", body)
        assert err.value.response.status_code == 400, body
    with pytest.raises(requests.HTTPError) as err:  # an unknown (or unreadable) dataset is not found
        await alice.request("POST", "/users/alice/alerts", {"events": ["complete"], "email": "a@b.c",
                                                            "dataset_id": "nonexistent"})
    assert err.value.response.status_code == 404
    for method, path in (("GET", "/users/alice/alerts"), ("POST", "/users/alice/alerts"),
                         ("DELETE", f"/users/alice/alerts/{made['subscription_id']}")):
        with pytest.raises(requests.HTTPError) as err:
            await bob.request(method, path, {})
        assert err.value.response.status_code == 403
    await alice.request("DELETE", f"/users/alice/alerts/{made['subscription_id']}")
    with pytest.raises(requests.HTTPError) as err:
        await alice.request("DELETE", f"/users/alice/alerts/{made['subscription_id']}")
    assert err.value.response.status_code == 404


async def _fail_twice(server: RunningServer, task_ids: list[str]) -> None:
    store = server.store
    pilot_id = await store.register_pilot(NewPilot(resources={"cpu": 8}))
    for _ in range(2):
        claimed = await store.claim(ClaimRequest(pilot_id=pilot_id, free=Resources(cpu=8, gpu=0, memory=16.0,
                                                                                   disk=100.0, time=24.0)))
        assert claimed is not None and claimed.task.task_id in task_ids
        await store.reset(claimed.task.task_id, claimed.instance_id, AttemptResult(time_used=1))
        await store.queue_tasks(100, dataset_id=claimed.task.dataset_id)


async def test_events_are_delivered_once_by_webhook_and_email(server: RunningServer, receiver: Receiver,
                                                              mailbox: Mailbox) -> None:
    alice = server.rest(server.token("alice"))
    made = await make_dataset(server.store, owner="alice", jobs=2)
    await alice.request("POST", "/users/alice/alerts", {
        "events": ["complete", "errors", "failure_spike", "stalled"], "webhook_url": receiver.url,
        "webhook_secret": SECRET, "email": "alice@example.org", "spike_threshold": 1, "stalled_hours": 1})
    watch = AlertWatch(server.store, server.settings)
    now = time.time()
    await watch.run(now)
    assert receiver.seen == [] and mailbox.messages == []  # queued work, but started just now: not stalled

    await watch.run(now + 2 * 3600)  # two hours on: nothing finished while tasks wait
    [(stalled, signed)] = receiver.seen
    assert signed == "valid" and stalled["event"] == "stalled" and stalled["queued_tasks"] == 2
    assert stalled["dataset"] == made.dataset.dataset
    [mail] = mailbox.messages
    assert mail["To"] == "alice@example.org" and mail["Subject"] == f"[frazil] dataset {made.dataset.dataset}: stalled"
    assert "no task finished for 1 h while 2 tasks wait" in mail.get_payload()
    await watch.run(now + 2 * 3600 + 60)
    assert len(receiver.seen) == 1 and len(mailbox.messages) == 1  # each event once

    await _fail_twice(server, made.task_ids)  # 2 failed attempts in the last hour > threshold 1
    receiver.fail_next = 2  # the receiver is down for two tries: back-off, then delivered
    await watch.run()
    assert [e["event"] for e, _ in receiver.seen] == ["stalled"]
    assert [m["Subject"].split(": ")[1] for m in mailbox.messages] == ["stalled", "failure_spike"]
    [pending] = await server.store.due_alert_events(time.time() + 10)
    assert pending.tries == 1 and "503" in pending.error and pending.payload["delivered"] == ["email"]
    assert await server.store.due_alert_events(time.time() + 5) == []  # not before its back-off
    await watch.deliver(time.time() + 10)  # second try: still down, waits twice as long
    assert await server.store.due_alert_events(time.time() + 15) == []
    await watch.deliver(time.time() + 30)
    spike = receiver.seen[-1][0]
    assert spike["event"] == "failure_spike" and spike["failures_last_hour"] == 2
    assert len(mailbox.messages) == 2  # the e-mail went once, with the first try

    await server.store.set_dataset_status(made.dataset.dataset_id, "complete", force=True)
    await watch.run()
    await watch.run()
    assert [e["event"] for e, _ in receiver.seen] == ["stalled", "failure_spike", "complete"]
    assert all(signed == "valid" for _, signed in receiver.seen)
    [sub] = (await alice.request("GET", "/users/alice/alerts"))["alerts"]
    assert {e["event"]: (e["status"], e["tries"]) for e in sub["recent"]} == {
        "complete": ("sent", 1), "failure_spike": ("sent", 3), "stalled": ("sent", 1)}


async def test_admins_hear_of_quarantines_once(server: RunningServer, receiver: Receiver, mailbox: Mailbox) -> None:
    alice, root = server.rest(server.token("alice")), server.rest(server.token("root", role="admin",
                                                                                groups=["admin"]))
    with pytest.raises(requests.HTTPError) as err:
        await alice.request("POST", "/users/alice/alerts", {"events": ["quarantine"], "email": "a@b.c"})
    assert err.value.response.status_code == 403  # admins only
    await root.request("POST", "/users/root/alerts", {"events": ["quarantine"], "webhook_url": receiver.url,
                                                      "webhook_secret": SECRET, "email": "ops@example.org"})
    watch = AlertWatch(server.store, server.settings)
    await watch.run()
    assert receiver.seen == []
    await server.store.add_quarantine("host", "node-7", "host node-7 failed 6 different tasks",
                                      "9999-01-01T00:00:00.000000")
    await watch.run()
    await watch.run()
    [(event, signed)] = receiver.seen
    assert signed == "valid" and (event["event"], event["kind"], event["name"]) == ("quarantine", "host", "node-7")
    assert "failed 6 different tasks" in event["text"]
    [mail] = mailbox.messages
    assert mail["Subject"] == "[frazil] quarantined host node-7" and mail["To"] == "ops@example.org"
