"""Pilots: registration, heartbeats, drain flag, lost-pilot marking."""
from __future__ import annotations

import sqlite3
from typing import Any, Sequence

from .. import checks
from ..interface import ConflictError
from ..records import HeartbeatReply, NewPilot, Pilot, nowstr
from .base import SQLiteBase
from .listing import Where
from .rows import PILOT_COLS, dumps, to_pilot

class PilotsMixin(SQLiteBase):

    async def register_pilot(self, pilot: NewPilot) -> str:
        def op(conn: sqlite3.Connection) -> str:
            try:
                conn.execute(
                    f"INSERT INTO pilots ({PILOT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', 0, '[]', ?, ?)",
                    (pilot.pilot_id, dumps(pilot.resources), dumps(pilot.resources), pilot.site, pilot.hostname,
                     dumps(pilot.os), pilot.provider, pilot.provider_job_id, pilot.version, nowstr(),
                     self.clock()))
            except sqlite3.IntegrityError:
                raise ConflictError(f"pilot {pilot.pilot_id} is already registered") from None
            return pilot.pilot_id
        return await self.db.write(op)

    async def pilot_heartbeat(self, pilot_id: str, free: dict[str, Any] | None,
                              tasks: Sequence[str]) -> HeartbeatReply:
        def op(conn: sqlite3.Connection) -> HeartbeatReply:
            sets, params = "last_seen = ?, tasks = ?", [self.clock(), dumps(list(tasks))]
            if free is not None:
                sets += ", free = ?"
                params.append(dumps(free))
            row = conn.execute(f"UPDATE pilots SET {sets} WHERE pilot_id = ? RETURNING drain",
                               (*params, pilot_id)).fetchone()
            return HeartbeatReply(False) if row is None else HeartbeatReply(True, bool(row[0]))
        return await self.db.write(op)

    async def get_pilot(self, pilot_id: str) -> Pilot | None:
        row = await self.db.read(lambda conn: conn.execute(
            f"SELECT {PILOT_COLS} FROM pilots WHERE pilot_id = ?", (pilot_id,)).fetchone())
        return None if row is None else to_pilot(row)

    async def list_pilots(self, *, site: str | None = None, state: str | None = None) -> list[Pilot]:
        where = Where()
        if site is not None:
            where.add("site = ?", site)
        if state is not None:
            where.add("state = ?", checks.pilot_state(state))
        rows = await self.db.read(lambda conn: conn.execute(
            f"SELECT {PILOT_COLS} FROM pilots WHERE {where.sql()} ORDER BY seq", where.params).fetchall())
        return [to_pilot(r) for r in rows]

    async def set_pilot_drain(self, pilot_id: str, drain: bool = True) -> bool:
        return await self.db.write(lambda conn: conn.execute(
            "UPDATE pilots SET drain = ? WHERE pilot_id = ?", (int(drain), pilot_id)).rowcount > 0)

    async def set_pilot_state(self, pilot_id: str, state: str) -> bool:
        checks.pilot_state(state)
        return await self.db.write(lambda conn: conn.execute(
            "UPDATE pilots SET state = ? WHERE pilot_id = ?", (state, pilot_id)).rowcount > 0)

    async def mark_lost_pilots(self, last_seen_before: float) -> list[str]:
        rows = await self.db.write(lambda conn: conn.execute(
            "UPDATE pilots SET state = 'lost' WHERE state = 'active' AND last_seen < ? RETURNING pilot_id",
            (last_seen_before,)).fetchall())
        return sorted(r[0] for r in rows)

    async def delete_pilot(self, pilot_id: str) -> bool:
        return await self.db.write(lambda conn: conn.execute(
            "DELETE FROM pilots WHERE pilot_id = ?", (pilot_id,)).rowcount > 0)
