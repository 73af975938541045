"""Alert subscriptions and events (roles/alerts.py) on SQLite: each row
keeps its record as a JSON document beside the columns its queries use."""
from __future__ import annotations

import dataclasses
import json
import sqlite3

from .. import checks
from ..records import AlertEvent, AlertSubscription, nowstr
from .base import SQLiteBase


def _doc(record: AlertSubscription | AlertEvent) -> str:
    return json.dumps(dataclasses.asdict(record), separators=(",", ":"))


class AlertsMixin(SQLiteBase):
    async def add_alert_subscription(self, subscription: AlertSubscription) -> AlertSubscription:
        made = dataclasses.replace(subscription, created=nowstr())
        await self.db.write(lambda conn: conn.execute(
            "INSERT INTO alert_subscriptions (subscription_id, username, doc) VALUES (?, ?, ?)",
            (made.subscription_id, made.username, _doc(made))))
        return made

    async def list_alert_subscriptions(self, username: str | None = None) -> list[AlertSubscription]:
        where, args = ("WHERE username = ?", (username,)) if username is not None else ("", ())
        rows = await self.db.read(lambda conn: conn.execute(
            f"SELECT doc FROM alert_subscriptions {where} ORDER BY seq", args).fetchall())
        return [AlertSubscription(**json.loads(r[0])) for r in rows]

    async def delete_alert_subscription(self, subscription_id: str, username: str) -> bool:
        return await self.db.write(lambda conn: conn.execute(
            "DELETE FROM alert_subscriptions WHERE subscription_id = ? AND username = ?",
            (subscription_id, username)).rowcount > 0)

    async def add_alert_event(self, event: AlertEvent) -> bool:
        made = dataclasses.replace(event, created=nowstr())

        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                """INSERT INTO alert_events (key, subscription_id, status, next_try, doc) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (key) DO NOTHING""",
                (made.key, made.subscription_id, made.status, made.next_try, _doc(made))).rowcount > 0
        return await self.db.write(op)

    async def due_alert_events(self, now: float, limit: int = 100) -> list[AlertEvent]:
        checks.count("limit", limit)
        rows = await self.db.read(lambda conn: conn.execute(
            "SELECT doc FROM alert_events WHERE status = 'pending' AND next_try <= ? ORDER BY next_try, seq LIMIT ?",
            (now, limit)).fetchall())
        return [AlertEvent(**json.loads(r[0])) for r in rows]

    async def update_alert_event(self, event: AlertEvent) -> None:
        await self.db.write(lambda conn: conn.execute(
            "UPDATE alert_events SET status = ?, next_try = ?, doc = ? WHERE key = ?",
            (event.status, event.next_try, _doc(event), event.key)))

    async def list_alert_events(self, subscription_id: str, limit: int = 100) -> list[AlertEvent]:
        checks.count("limit", limit)
        rows = await self.db.read(lambda conn: conn.execute(
            "SELECT doc FROM alert_events WHERE subscription_id = ? ORDER BY seq DESC LIMIT ?",
            (subscription_id, limit)).fetchall())
        return [AlertEvent(**json.loads(r[0])) for r in rows]
