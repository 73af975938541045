"""Alert subscriptions and events (roles/alerts.py) on MongoDB; an event's
``_id`` is its key, so recording it twice is a duplicate-key no-op."""
from __future__ import annotations

import dataclasses
from typing import Any

from pymongo.errors import DuplicateKeyError

from .. import checks
from ..records import AlertEvent, AlertSubscription, nowstr
from . import schema
from .base import Doc, MongoBase

SUB_FIELDS = {f.name for f in dataclasses.fields(AlertSubscription)}
EVENT_FIELDS = {f.name for f in dataclasses.fields(AlertEvent)}


class AlertsMixin(MongoBase):
    @property
    def _subscriptions(self) -> Any:
        return self._db.get_collection(schema.ALERT_SUBSCRIPTIONS)

    @property
    def _alert_events(self) -> Any:
        return self._db.get_collection(schema.ALERT_EVENTS)

    async def add_alert_subscription(self, subscription: AlertSubscription) -> AlertSubscription:
        made = dataclasses.replace(subscription, created=nowstr())
        await self._subscriptions.insert_one({"_id": made.subscription_id, "seq": await self._next_seq("alert_sub"),
                                              **dataclasses.asdict(made)})
        return made

    async def list_alert_subscriptions(self, username: str | None = None) -> list[AlertSubscription]:
        query: Doc = {} if username is None else {"username": username}
        docs = await self._subscriptions.find(query).sort([("seq", 1)]).to_list()
        return [AlertSubscription(**{k: v for k, v in d.items() if k in SUB_FIELDS}) for d in docs]

    async def delete_alert_subscription(self, subscription_id: str, username: str) -> bool:
        result = await self._subscriptions.delete_one({"_id": subscription_id, "username": username})
        return result.deleted_count > 0

    async def add_alert_event(self, event: AlertEvent) -> bool:
        made = dataclasses.replace(event, created=nowstr())
        try:
            await self._alert_events.insert_one({"_id": made.key, "seq": await self._next_seq("alert_event"),
                                                 **dataclasses.asdict(made)})
        except DuplicateKeyError:
            return False
        return True

    async def due_alert_events(self, now: float, limit: int = 100) -> list[AlertEvent]:
        checks.count("limit", limit)
        docs = await self._alert_events.find({"status": "pending", "next_try": {"$lte": now}}).sort(
            [("next_try", 1), ("seq", 1)]).limit(limit).to_list()
        return [AlertEvent(**{k: v for k, v in d.items() if k in EVENT_FIELDS}) for d in docs]

    async def update_alert_event(self, event: AlertEvent) -> None:
        await self._alert_events.update_one({"_id": event.key}, {"$set": {
            "status": event.status, "tries": event.tries, "next_try": event.next_try, "error": event.error}})

    async def list_alert_events(self, subscription_id: str, limit: int = 100) -> list[AlertEvent]:
        checks.count("limit", limit)
        docs = await self._alert_events.find({"subscription_id": subscription_id}).sort(
            [("seq", -1)]).limit(limit).to_list()
        return [AlertEvent(**{k: v for k, v in d.items() if k in EVENT_FIELDS}) for d in docs]
