"""Contract: alert subscriptions and events (each event recorded once)."""
from __future__ import annotations

import dataclasses

import pytest

from server.store import AlertEvent, AlertSubscription, InvalidArgumentError, Store


async def test_subscriptions_per_user(store: Store) -> None:
    a = await store.add_alert_subscription(AlertSubscription("s1", "alice", ["complete"], webhook_url="http://x",
                                                             webhook_secret="k"))
    await store.add_alert_subscription(AlertSubscription("s2", "bob", ["errors", "stalled"], email="b@x.org"))
    assert a.created and a.to_doc()["webhook_secret"] is True  # never the key itself
    assert [s.subscription_id for s in await store.list_alert_subscriptions("alice")] == ["s1"]
    assert [s.subscription_id for s in await store.list_alert_subscriptions()] == ["s1", "s2"]
    assert (await store.list_alert_subscriptions("bob"))[0].events == ["errors", "stalled"]
    assert not await store.delete_alert_subscription("s1", "bob")  # not bob's
    assert await store.delete_alert_subscription("s1", "alice")
    assert await store.list_alert_subscriptions("alice") == []


async def test_events_once_due_and_updated(store: Store) -> None:
    first = AlertEvent("s1:d1:complete", "s1", "complete", "d1", {"dataset": 5})
    assert await store.add_alert_event(first)
    assert not await store.add_alert_event(dataclasses.replace(first, payload={"other": 1}))  # once
    assert await store.add_alert_event(AlertEvent("s1:d2:complete", "s1", "complete", "d2", next_try=50.0))
    due = await store.due_alert_events(10.0)
    assert [e.key for e in due] == ["s1:d1:complete"] and due[0].payload == {"dataset": 5}
    assert [e.key for e in await store.due_alert_events(100.0)] == ["s1:d1:complete", "s1:d2:complete"]
    await store.update_alert_event(dataclasses.replace(due[0], status="sent", tries=1))
    assert [e.key for e in await store.due_alert_events(100.0)] == ["s1:d2:complete"]
    events = await store.list_alert_events("s1")
    assert [(e.key, e.status, e.tries) for e in events] == [("s1:d2:complete", "pending", 0),
                                                            ("s1:d1:complete", "sent", 1)]
    with pytest.raises(InvalidArgumentError):
        await store.due_alert_events(1.0, limit=0)
