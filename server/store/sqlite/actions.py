"""Action messages: the server's durable queue of long operations
(IceProd's services queue) with worker locks and stale-lock takeover."""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from .. import checks
from ..records import ACTION_STATUSES, ActionMessage, new_id, nowstr
from .base import SQLiteBase
from .rows import dumps

ACTION_COLS = ("message_id, action, status, payload, priority, created_at, updated_at, attempts, worker_id, "
               "locked_at, error_message, progress, dataset_id, dedupe_key")


def _action(r: sqlite3.Row) -> ActionMessage:
    return ActionMessage(r["message_id"], r["action"], r["status"], json.loads(r["payload"]), r["priority"],
                         r["created_at"], r["updated_at"], r["attempts"], r["worker_id"], r["locked_at"],
                         r["error_message"], r["progress"], r["dataset_id"], r["dedupe_key"])


def _get(conn: sqlite3.Connection, message_id: str) -> sqlite3.Row | None:
    return conn.execute(f"SELECT {ACTION_COLS} FROM actions WHERE message_id = ?", (message_id,)).fetchone()


def _merged(row: sqlite3.Row, update: dict[str, Any] | None) -> str:
    payload = json.loads(row["payload"])
    payload.update(update or {})
    return dumps(payload)


class ActionsMixin(SQLiteBase):

    async def add_action(self, action: str, payload: dict[str, Any], *, priority: int = 10,
                         dataset_id: str | None = None, dedupe_key: str | None = None) -> ActionMessage:
        checks.action_payload(payload)

        def op(conn: sqlite3.Connection) -> ActionMessage:
            if dedupe_key is not None:
                row = conn.execute(f"""SELECT {ACTION_COLS} FROM actions WHERE action = ? AND dedupe_key = ?
                                       AND status IN ('queued', 'processing') ORDER BY seq LIMIT 1""",
                                   (action, dedupe_key)).fetchone()
                if row is not None:
                    return _action(row)
            message_id, now = new_id(), nowstr()
            conn.execute(f"INSERT INTO actions ({ACTION_COLS}) VALUES (?, ?, 'queued', ?, ?, ?, ?, 0, NULL, NULL, "
                         "'', 0, ?, ?)", (message_id, action, dumps(payload), int(priority), now, now, dataset_id,
                                          dedupe_key))
            return _action(_get(conn, message_id))  # type: ignore[arg-type]
        return await self.db.write(op)

    async def get_action(self, message_id: str) -> ActionMessage | None:
        row = await self.db.read(lambda conn: _get(conn, message_id))
        return None if row is None else _action(row)

    async def action_counts(self, action: str) -> dict[str, int]:
        rows = await self.db.read(lambda conn: conn.execute(
            "SELECT status, count(*) FROM actions WHERE action = ? GROUP BY status", (action,)).fetchall())
        counts = {status: 0 for status in ACTION_STATUSES}
        counts.update({r[0]: r[1] for r in rows})
        return counts

    async def latest_action(self, action: str, dataset_id: str) -> ActionMessage | None:
        row = await self.db.read(lambda conn: conn.execute(
            f"SELECT {ACTION_COLS} FROM actions WHERE action = ? AND dataset_id = ? ORDER BY seq DESC LIMIT 1",
            (action, dataset_id)).fetchone())
        return None if row is None else _action(row)

    async def pop_action(self, worker_id: str, *, stale_after: float = 910.0) -> ActionMessage | None:
        def op(conn: sqlite3.Connection) -> ActionMessage | None:
            now = self.clock()
            candidates = [r for r in (
                conn.execute("""SELECT seq, priority FROM actions WHERE status = 'queued'
                                ORDER BY priority DESC, seq LIMIT 1""").fetchone(),
                conn.execute("""SELECT seq, priority FROM actions WHERE status = 'processing' AND locked_at < ?
                                ORDER BY priority DESC, seq LIMIT 1""", (now - stale_after,)).fetchone(),
            ) if r is not None]
            if not candidates:
                return None
            seq = min(candidates, key=lambda r: (-r[1], r[0]))[0]
            row = conn.execute(f"""UPDATE actions SET status = 'processing', attempts = attempts + 1, worker_id = ?,
                                       locked_at = ?, updated_at = ? WHERE seq = ? RETURNING {ACTION_COLS}""",
                               (worker_id, now, nowstr(), seq)).fetchone()
            return _action(row)
        return await self.db.write(op)

    async def finish_action(self, message_id: str, worker_id: str, status: str, *, error_message: str = "",
                            payload_update: dict[str, Any] | None = None) -> bool:
        checks.action_finish_status(status)
        checks.action_payload_update(payload_update)

        def op(conn: sqlite3.Connection) -> bool:
            row = _get(conn, message_id)
            if row is None or row["status"] != "processing" or row["worker_id"] != worker_id:
                return False
            release = status == "queued"
            conn.execute("""UPDATE actions SET status = ?, error_message = ?, payload = ?, updated_at = ?,
                                worker_id = CASE WHEN ? THEN NULL ELSE worker_id END,
                                locked_at = CASE WHEN ? THEN NULL ELSE locked_at END,
                                progress = CASE WHEN ? = 'complete' THEN 100 ELSE progress END
                            WHERE message_id = ?""",
                         (status, error_message, _merged(row, payload_update), nowstr(), release, release, status,
                          message_id))
            return True
        return await self.db.write(op)

    async def update_action_progress(self, message_id: str, progress: float,
                                     payload_update: dict[str, Any] | None = None) -> bool:
        checks.action_progress(progress)
        checks.action_payload_update(payload_update)

        def op(conn: sqlite3.Connection) -> bool:
            row = _get(conn, message_id)
            if row is None or row["status"] != "processing":
                return False
            conn.execute("UPDATE actions SET progress = ?, payload = ?, updated_at = ? WHERE message_id = ?",
                         (float(progress), _merged(row, payload_update), nowstr(), message_id))
            return True
        return await self.db.write(op)

    async def delete_actions_before(self, created_before: str) -> int:
        return await self.db.write(lambda conn: conn.execute(
            "DELETE FROM actions WHERE status IN ('complete', 'error') AND created_at < ?",
            (created_before,)).rowcount)
