"""Users, groups, usage accounting and background-loop leases."""
from __future__ import annotations

import sqlite3

from .. import checks
from ..interface import ConflictError
from ..records import Group, Revocation, Usage, User, new_id
from .base import SQLiteBase
from .rows import to_user


class AccountsMixin(SQLiteBase):

    async def create_user(self, username: str, priority: float = 0.5) -> User:
        user = User(new_id(), username, checks.priority(priority))

        def op(conn: sqlite3.Connection) -> User:
            try:
                conn.execute("INSERT INTO users (user_id, username, priority) VALUES (?, ?, ?)",
                             (user.user_id, user.username, user.priority))
            except sqlite3.IntegrityError:
                raise ConflictError(f"user {username!r} already exists") from None
            return user
        return await self.db.write(op)

    async def ensure_user(self, username: str) -> User:
        def op(conn: sqlite3.Connection) -> User:
            conn.execute("INSERT OR IGNORE INTO users (user_id, username, priority) VALUES (?, ?, 0.5)",
                         (new_id(), username))
            return to_user(conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone())
        return await self.db.write(op)

    async def get_user(self, username: str) -> User | None:
        row = await self.db.read(lambda conn: conn.execute(
            "SELECT * FROM users WHERE username = ?", (username,)).fetchone())
        return None if row is None else to_user(row)

    async def list_users(self) -> list[User]:
        rows = await self.db.read(lambda conn: conn.execute("SELECT * FROM users ORDER BY username").fetchall())
        return [to_user(r) for r in rows]

    async def set_user_priority(self, username: str, priority: float) -> bool:
        value = checks.priority(priority)
        return await self.db.write(lambda conn: conn.execute(
            "UPDATE users SET priority = ? WHERE username = ?", (value, username)).rowcount > 0)

    async def delete_user(self, username: str) -> bool:
        return await self.db.write(lambda conn: conn.execute(
            "DELETE FROM users WHERE username = ?", (username,)).rowcount > 0)

    async def revoke_tokens(self, subject: str, revoked_at: float, deleted: bool | None = None) -> None:
        await self.db.write(lambda conn: conn.execute(
            """INSERT INTO revocations (subject, revoked_at, deleted) VALUES (?, ?, ?)
               ON CONFLICT(subject) DO UPDATE SET revoked_at = max(revoked_at, excluded.revoked_at),
                   deleted = CASE WHEN ? IS NULL THEN deleted ELSE excluded.deleted END""",
            (subject, float(revoked_at), int(bool(deleted)), deleted)))

    async def list_revocations(self) -> list[Revocation]:
        rows = await self.db.read(lambda conn: conn.execute(
            "SELECT subject, revoked_at, deleted FROM revocations").fetchall())
        return [Revocation(r[0], r[1], bool(r[2])) for r in rows]

    async def create_group(self, name: str, priority: float = 0.5) -> Group:
        group = Group(name, checks.priority(priority))

        def op(conn: sqlite3.Connection) -> Group:
            try:
                conn.execute("INSERT INTO groups (name, priority) VALUES (?, ?)", (name, group.priority))
            except sqlite3.IntegrityError:
                raise ConflictError(f"group {name!r} already exists") from None
            return group
        return await self.db.write(op)

    async def list_groups(self) -> list[Group]:
        rows = await self.db.read(lambda conn: conn.execute("SELECT name, priority FROM groups ORDER BY name")
                                  .fetchall())
        return [Group(r[0], r[1]) for r in rows]

    async def set_group_priority(self, name: str, priority: float) -> bool:
        value = checks.priority(priority)
        return await self.db.write(lambda conn: conn.execute(
            "UPDATE groups SET priority = ? WHERE name = ?", (value, name)).rowcount > 0)

    async def delete_group(self, name: str) -> bool:
        return await self.db.write(lambda conn: conn.execute(
            "DELETE FROM groups WHERE name = ?", (name,)).rowcount > 0)

    async def add_usage(self, username: str, group: str, core_hours: float) -> None:
        core_hours = checks.core_hours(core_hours)
        await self.db.write(lambda conn: conn.executemany(
            """INSERT INTO usage (kind, name, core_hours) VALUES (?, ?, ?)
               ON CONFLICT(kind, name) DO UPDATE SET core_hours = core_hours + excluded.core_hours""",
            [("user", username, core_hours), ("group", group, core_hours)]))

    async def list_usage(self) -> list[Usage]:
        rows = await self.db.read(lambda conn: conn.execute(
            "SELECT kind, name, core_hours FROM usage ORDER BY kind, name").fetchall())
        return [Usage(r[0], r[1], r[2]) for r in rows]

    async def acquire_lease(self, name: str, holder: str, seconds: float) -> bool:
        checks.lease_seconds(seconds, "seconds")

        def op(conn: sqlite3.Connection) -> bool:
            now = self.clock()
            # One statement: take a free or expired lease, or extend our own.
            row = conn.execute(
                """INSERT INTO loop_leases (name, holder, expires) VALUES (?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
                   WHERE loop_leases.holder = excluded.holder OR loop_leases.expires < ?
                   RETURNING holder""", (name, holder, now + seconds, now)).fetchone()
            return row is not None and row[0] == holder
        return await self.db.write(op)

    async def release_lease(self, name: str, holder: str) -> bool:
        return await self.db.write(lambda conn: conn.execute(
            "DELETE FROM loop_leases WHERE name = ? AND holder = ?", (name, holder)).rowcount > 0)
