"""Alerts (issue 16 item 2): users subscribe to events of their datasets —
``complete``, ``errors``, ``failure_spike`` (more failed attempts in the last
hour than the subscription's threshold) and ``stalled`` (no task finished for
``stalled_hours`` while work is queued). The ``alerts`` loop (under its store
lease) records each event once in the store, keyed so that the same event
is never recorded twice, then delivers pending events by webhook and/or
e-mail, retrying with exponential back-off up to ``alert_max_tries``.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from typing import Any

from server.auth import Identity
from server.auth.rights import may
from server.errors import Refused
from server.scheduling.alert_delivery import DeliveryError, send_email, send_webhook
from server.settings import Settings
from server.store import (
    AlertEvent, AlertSubscription, Dataset, DatasetFilter, InvalidArgumentError, ListOptions, NotFoundError, Store,
    TaskFilter,
)
from server.store.records import TIME_FORMAT, new_id

log = logging.getLogger("frazil.server.alerts")

MAX_DATASETS = 1000
"""Most datasets one subscription watches (the user's newest)."""


def _stamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(TIME_FORMAT)


async def subscribe(store: Store, identity: Identity, username: str, body: dict[str, Any]) -> AlertSubscription:
    """A new subscription for ``username`` (the body is schema-checked by the route)."""
    if "quarantine" in body["events"] and not identity.is_admin:
        raise Refused(403, "only admins subscribe to quarantine events")
    if not body.get("webhook_url") and not body.get("email"):
        raise InvalidArgumentError("a subscription needs a webhook_url, an email, or both")
    dataset_id = body.get("dataset_id", "")
    if dataset_id:
        if await store.get_dataset(dataset_id) is None or not await may(store, identity, dataset_id, "read"):
            raise NotFoundError(f"dataset {dataset_id!r} not found")
    return await store.add_alert_subscription(AlertSubscription(
        new_id(), username, sorted(set(body["events"])), dataset_id=dataset_id,
        webhook_url=body.get("webhook_url", ""), webhook_secret=body.get("webhook_secret", ""),
        email=body.get("email", ""), spike_threshold=int(body.get("spike_threshold", 10)),
        stalled_hours=float(body.get("stalled_hours", 6.0))))


class AlertWatch:
    """The ``alerts`` loop: find events, then deliver the due ones."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def run(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        for subscription in await self.store.list_alert_subscriptions():
            if "quarantine" in subscription.events:
                await self._quarantines(subscription, now)
            if not set(subscription.events) - {"quarantine"}:
                continue
            for dataset in await self._datasets(subscription):
                for event, key, details in await self._events(subscription, dataset, now):
                    payload = {"event": event, "dataset_id": dataset.dataset_id, "dataset": dataset.dataset,
                               "description": dataset.description, "status": dataset.status,
                               "time": _stamp(now), **details}
                    await self.store.add_alert_event(AlertEvent(key, subscription.subscription_id, event,
                                                                dataset.dataset_id, payload, next_try=now))
        return await self.deliver(now)

    async def _quarantines(self, subscription: AlertSubscription, now: float) -> None:
        """The admins' alert of issue 16 item 3: each quarantine in force, once."""
        for q in await self.store.list_quarantines(active_at=_stamp(now), limit=100):
            await self.store.add_alert_event(AlertEvent(
                f"{subscription.subscription_id}:quarantine:{q.quarantine_id}", subscription.subscription_id,
                "quarantine", "", {"event": "quarantine", "kind": q.kind, "name": q.name, "reason": q.reason,
                                   "since": q.created, "until": q.expires, "time": _stamp(now),
                                   "text": f"{q.kind} {q.name} is quarantined until {q.expires}: {q.reason}"},
                next_try=now))

    async def _datasets(self, subscription: AlertSubscription) -> list[Dataset]:
        if subscription.dataset_id:
            found = await self.store.get_dataset(subscription.dataset_id)
            return [found] if found is not None else []
        page = await self.store.list_datasets(DatasetFilter(users=[subscription.username]),
                                              ListOptions(limit=MAX_DATASETS, keys=["dataset_id"]))
        return [d for d in (await self._by_ids([r["dataset_id"] for r in page.rows])) if d is not None]

    async def _by_ids(self, ids: list[str]) -> list[Dataset | None]:
        return [await self.store.get_dataset(i) for i in ids]

    async def _events(self, sub: AlertSubscription, ds: Dataset, now: float) -> list[tuple[str, str, dict[str, Any]]]:
        """(event, unique key, details) of what is true of the dataset now."""
        base = f"{sub.subscription_id}:{ds.dataset_id}"
        found: list[tuple[str, str, dict[str, Any]]] = []
        if "complete" in sub.events and ds.status == "complete":
            found.append(("complete", f"{base}:complete", {"text": f"dataset {ds.dataset} is complete"}))
        if "errors" in sub.events and ds.status == "errors":
            found.append(("errors", f"{base}:errors:{ds.status_changed}",
                          {"text": f"dataset {ds.dataset} finished with failed tasks (status errors)"}))
        if ds.status != "processing":
            return found
        store = self.store
        if "failure_spike" in sub.events:
            since = _stamp(now - 3600)
            failed = sum([await store.count_attempts_ended(ds.dataset_id, since, status=s) for s in ("failed", "reset")])
            if failed > sub.spike_threshold:
                found.append(("failure_spike", f"{base}:spike:{int(now // 3600)}", {
                    "failures_last_hour": failed, "threshold": sub.spike_threshold,
                    "text": f"dataset {ds.dataset}: {failed} failed attempts in the last hour "
                            f"(more than {sub.spike_threshold})"}))
        if "stalled" in sub.events:
            window = sub.stalled_hours * 3600
            started = datetime.datetime.strptime(ds.start_date, TIME_FORMAT).replace(
                tzinfo=datetime.timezone.utc).timestamp()
            if now - started >= window:
                counts = await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id))
                queued = counts.get("queued", 0) + counts.get("waiting", 0)
                done = await store.count_attempts_ended(ds.dataset_id, _stamp(now - window), status="complete")
                if queued and not done:
                    found.append(("stalled", f"{base}:stalled:{int(now // window)}", {
                        "queued_tasks": queued, "hours": sub.stalled_hours,
                        "text": f"dataset {ds.dataset}: no task finished for {sub.stalled_hours:g} h "
                                f"while {queued} tasks wait"}))
        return found

    async def deliver(self, now: float) -> bool:
        """Send the due events; a failed channel is retried with back-off."""
        settings = self.settings
        subscriptions = {s.subscription_id: s for s in await self.store.list_alert_subscriptions()}
        due = await self.store.due_alert_events(now, limit=100)
        for event in due:
            sub = subscriptions.get(event.subscription_id)
            if sub is None:
                await self.store.update_alert_event(dataclasses.replace(event, status="failed",
                                                                        error="subscription deleted"))
                continue
            done = set(event.payload.get("delivered", []))
            errors = []
            for channel in ("webhook", "email"):
                if channel in done or not (sub.webhook_url if channel == "webhook" else sub.email):
                    continue
                try:
                    if channel == "webhook":
                        await send_webhook(sub.webhook_url, sub.webhook_secret, _public(event.payload))
                    else:
                        await send_email(settings, sub.email, _public(event.payload))
                    done.add(channel)
                except DeliveryError as exc:
                    errors.append(str(exc))
            tries = event.tries + 1
            payload = {**event.payload, "delivered": sorted(done)}
            if not errors:
                update = dataclasses.replace(event, status="sent", tries=tries, payload=payload, error="")
            elif tries >= settings.alert_max_tries:
                update = dataclasses.replace(event, status="failed", tries=tries, payload=payload,
                                             error="; ".join(errors))
                log.warning("alert not delivered", extra={"key": event.key, "error": update.error})
            else:
                update = dataclasses.replace(event, tries=tries, payload=payload, error="; ".join(errors),
                                             next_try=now + settings.alert_retry_seconds * 2 ** (tries - 1))
            await self.store.update_alert_event(update)
        return len(due) >= 100


def _public(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "delivered"}
