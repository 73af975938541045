"""Schema version 13 (issue 12 item 4): ``tasks.not_before`` (epoch seconds)
holds a paced retry back. The waiting index leaves such tasks out, so
queueing never re-reads them; a small partial index over ``not_before``
finds those whose time has come, and the earliest (the next wake-up)."""
from __future__ import annotations

import sqlite3

RETRY_PACING_DDL = (
    "ALTER TABLE tasks ADD COLUMN not_before REAL",
    "DROP INDEX ix_tasks_waiting",
    "CREATE INDEX ix_tasks_waiting ON tasks(dataset_id, prio_offset DESC, seq) "
    "WHERE status = 'waiting' AND not_before IS NULL",
    "CREATE INDEX ix_tasks_not_before ON tasks(not_before) WHERE not_before IS NOT NULL",
)


def migrate_retry_pacing(conn: sqlite3.Connection) -> None:
    for statement in RETRY_PACING_DDL:  # in the migration's transaction (no executescript)
        conn.execute(statement)
