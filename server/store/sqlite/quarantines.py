"""Quarantined hosts and sites (roles/quarantines.py) on SQLite."""
from __future__ import annotations

import sqlite3

from .. import checks
from ..records import Quarantine, new_id, nowstr
from .base import SQLiteBase

COLS = "quarantine_id, kind, name, reason, created, expires, lifted, lifted_by"


def _row(row: sqlite3.Row) -> Quarantine:
    return Quarantine(*tuple(row))


class QuarantinesMixin(SQLiteBase):
    async def add_quarantine(self, kind: str, name: str, reason: str, expires: str) -> tuple[Quarantine, bool]:
        checks.quarantine(kind, name)
        checks.text("reason", reason)

        def op(conn: sqlite3.Connection) -> tuple[Quarantine, bool]:
            now = nowstr()
            row = conn.execute(f"""SELECT {COLS} FROM quarantines WHERE kind = ? AND name = ? AND expires > ?
                                   AND lifted = '' ORDER BY seq DESC LIMIT 1""", (kind, name, now)).fetchone()
            if row is not None:
                return _row(row), False
            made = Quarantine(new_id(), kind, name, reason, now, expires)
            conn.execute(f"INSERT INTO quarantines ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (made.quarantine_id, kind, name, reason, made.created, expires, "", ""))
            return made, True
        return await self.db.write(op)

    async def list_quarantines(self, *, active_at: str | None = None, limit: int = 100) -> list[Quarantine]:
        checks.count("limit", limit)
        where, args = ("WHERE lifted = '' AND expires > ?", [active_at]) if active_at is not None else ("", [])
        rows = await self.db.read(lambda conn: conn.execute(
            f"SELECT {COLS} FROM quarantines {where} ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall())
        return [_row(r) for r in rows]

    async def lift_quarantine(self, quarantine_id: str, by: str) -> Quarantine | None:
        def op(conn: sqlite3.Connection) -> Quarantine | None:
            conn.execute("UPDATE quarantines SET lifted = ?, lifted_by = ? WHERE quarantine_id = ? AND lifted = ''",
                         (nowstr(), by, quarantine_id))
            row = conn.execute(f"SELECT {COLS} FROM quarantines WHERE quarantine_id = ?", (quarantine_id,)).fetchone()
            return None if row is None else _row(row)
        return await self.db.write(op)
