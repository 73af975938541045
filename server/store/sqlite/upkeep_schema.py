"""Schema migrations of the production upkeep (issue 16): the indexes log
retention walks logs by age with, one per log name and one per dataset (the
latter replaces the dataset-only index, whose lookups it serves too), and
the quarantined hosts and sites."""
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


QUARANTINES_DDL = (
    """CREATE TABLE quarantines (seq INTEGER PRIMARY KEY, quarantine_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
       name TEXT NOT NULL, reason TEXT NOT NULL, created TEXT NOT NULL, expires TEXT NOT NULL,
       lifted TEXT NOT NULL DEFAULT '', lifted_by TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX ix_quarantines_name ON quarantines(kind, name, expires)",
)


def migrate_quarantines(conn: sqlite3.Connection) -> None:
    for statement in QUARANTINES_DDL:
        conn.execute(statement)


ALERTS_DDL = (
    """CREATE TABLE alert_subscriptions (seq INTEGER PRIMARY KEY, subscription_id TEXT NOT NULL UNIQUE,
       username TEXT NOT NULL, doc TEXT NOT NULL)""",
    "CREATE INDEX ix_alert_subscriptions_user ON alert_subscriptions(username)",
    """CREATE TABLE alert_events (seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, subscription_id TEXT NOT NULL,
       status TEXT NOT NULL, next_try REAL NOT NULL, doc TEXT NOT NULL)""",
    "CREATE INDEX ix_alert_events_due ON alert_events(status, next_try)",
    "CREATE INDEX ix_alert_events_subscription ON alert_events(subscription_id, seq)",
)


def migrate_alerts(conn: sqlite3.Connection) -> None:
    for statement in ALERTS_DDL:
        conn.execute(statement)
