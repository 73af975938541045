"""Schema migration: the indexes log retention walks logs by age with, one
per log name and one per dataset (the latter replaces the dataset-only
index, whose lookups it serves too)."""
from __future__ import annotations

import sqlite3

LOG_TIME_DDL = (
    "CREATE INDEX ix_logs_name_time ON logs(name, timestamp, log_id)",
    "CREATE INDEX ix_logs_dataset_time ON logs(dataset_id, timestamp, log_id)",
    "DROP INDEX ix_logs_dataset",
)


def migrate_log_time(conn: sqlite3.Connection) -> None:
    for statement in LOG_TIME_DDL:
        conn.execute(statement)
