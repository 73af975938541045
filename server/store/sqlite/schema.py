"""Schema and ordered migrations of the SQLite store.

The version lives in table ``schema_version`` (one row). Opening a file runs
every migration above its version, each in its own transaction, so a crash
during an upgrade leaves the file at the last complete version. A file from a
newer frazil is refused rather than half-understood.

Indexes are chosen so that the listings the API pages through (a dataset's
tasks or jobs, optionally of one status) walk an index in ``seq`` order (SQLite
appends the rowid to every index), so a keyset page costs the same at any
depth; indexes whose key holds no status are never touched by the claim path.

History:
1. initial schema (first release): every table, the claim served by one
   ``(priority desc)`` index over queued tasks, IceProd-style;
2. resource classes: each task gets a ``class_id`` (its binned shape +
   site + os), a ``resource_classes`` table keeps queued counts and bounds per
   class, and the claim index becomes ``(class_id, priority desc)`` so a claim
   probes only the few classes that fit instead of scanning the queue for
   fitting tasks. Existing tasks are classified during the upgrade;
3. action messages (the server's ``/actions/*`` queue);
4. a covering index for the per-name status table of a dataset;
5. stored credentials (issue 13);
6. scale: task priority = clamp(dataset ``task_base`` + task ``prio_offset``).
   The per-task part is stored once per task (computed here for the tasks
   a file already holds), the dataset part once per dataset, so a priority
   change never rewrites a dataset's waiting tasks. The waiting and
   releasable indexes lead with ``dataset_id``: queueing merges the datasets'
   best waiting tasks and release walks one processing dataset at a time,
   each an index range, whatever the backlog of other datasets. The
   ``(dataset_id)`` index (i.e. ``(dataset_id, seq)``) dropped by 4 comes
   back: without it every page of a dataset's task listing sorted the whole
   dataset.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Callable

from ..interface import SchemaVersionError
from ..rules import NO_PRIORITY_OFFSET, task_priority_offset, task_shape
from .attempt_queries import migrate_attempt_ends
from .classes import ClassCache
from .retry_pacing import migrate_retry_pacing
from .upkeep_schema import migrate_alerts, migrate_log_time, migrate_quarantines

V1_DDL = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;

CREATE TABLE datasets (
    seq INTEGER PRIMARY KEY,
    dataset_id TEXT NOT NULL UNIQUE,
    dataset INTEGER NOT NULL UNIQUE,
    description TEXT NOT NULL,
    jobs_submitted INTEGER NOT NULL,
    tasks_submitted INTEGER NOT NULL,
    tasks_per_job INTEGER NOT NULL,
    grp TEXT NOT NULL,
    username TEXT NOT NULL,
    status TEXT NOT NULL,
    start_date TEXT NOT NULL,
    status_changed TEXT NOT NULL,
    priority REAL NOT NULL DEFAULT 0.5,
    debug INTEGER NOT NULL DEFAULT 0,
    jobs_immutable INTEGER NOT NULL DEFAULT 0,
    truncated INTEGER NOT NULL DEFAULT 0,
    always_active INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ix_datasets_status ON datasets(status);

CREATE TABLE config_versions (
    dataset_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    config TEXT NOT NULL,
    author TEXT NOT NULL,
    comment TEXT NOT NULL,
    created TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (dataset_id, version)
);

CREATE TABLE rights (
    dataset_id TEXT PRIMARY KEY,
    read_groups TEXT NOT NULL,
    write_groups TEXT NOT NULL,
    read_users TEXT NOT NULL,
    write_users TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL UNIQUE,
    dataset_id TEXT NOT NULL,
    job_index INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_changed TEXT NOT NULL,
    UNIQUE (dataset_id, job_index)
);
CREATE INDEX ix_jobs_dataset ON jobs(dataset_id);
CREATE INDEX ix_jobs_dataset_status ON jobs(dataset_id, status);

CREATE TABLE tasks (
    seq INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL UNIQUE,
    dataset_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    job_index INTEGER NOT NULL,
    task_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    depends TEXT NOT NULL,
    requirements TEXT NOT NULL,
    status TEXT NOT NULL,
    status_changed TEXT NOT NULL,
    priority REAL NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    failures_nonphysics INTEGER NOT NULL DEFAULT 0,
    failures_infra INTEGER NOT NULL DEFAULT 0,
    evictions INTEGER NOT NULL DEFAULT 0,
    walltime REAL NOT NULL DEFAULT 0,
    walltime_err REAL NOT NULL DEFAULT 0,
    walltime_err_n INTEGER NOT NULL DEFAULT 0,
    site TEXT NOT NULL DEFAULT '',
    instance_id TEXT NOT NULL DEFAULT '',
    pilot_id TEXT NOT NULL DEFAULT '',
    lease_expires REAL,
    resource_class TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    config_version INTEGER,
    deps_pending INTEGER NOT NULL DEFAULT 0,
    req_cpu INTEGER NOT NULL,
    req_gpu INTEGER NOT NULL,
    req_memory REAL NOT NULL,
    req_disk REAL NOT NULL,
    req_time REAL NOT NULL,
    req_site TEXT NOT NULL DEFAULT '',
    req_os TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX ix_tasks_dataset ON tasks(dataset_id);
CREATE INDEX ix_tasks_dataset_status ON tasks(dataset_id, status);
CREATE INDEX ix_tasks_job ON tasks(dataset_id, job_index);
CREATE INDEX ix_tasks_queued ON tasks(priority DESC, seq) WHERE status = 'queued';
CREATE INDEX ix_tasks_waiting ON tasks(priority DESC, seq) WHERE status = 'waiting';
CREATE INDEX ix_tasks_releasable ON tasks(seq) WHERE status = 'idle' AND deps_pending = 0;
CREATE INDEX ix_tasks_lease ON tasks(lease_expires) WHERE status = 'processing';

CREATE TABLE task_deps (
    depends_on TEXT NOT NULL,
    task_id TEXT NOT NULL,
    PRIMARY KEY (depends_on, task_id)
) WITHOUT ROWID;

CREATE TABLE attempts (
    seq INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    instance_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    pilot_id TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT '',
    site TEXT NOT NULL DEFAULT '',
    start TEXT NOT NULL,
    "end" TEXT,
    status TEXT NOT NULL,
    failure_class TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT '',
    rule TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    resources TEXT NOT NULL DEFAULT '{}',
    resources_used TEXT NOT NULL DEFAULT '{}',
    modules TEXT NOT NULL DEFAULT '[]',
    exit_codes TEXT NOT NULL DEFAULT '[]',
    inputs TEXT NOT NULL DEFAULT '[]',
    outputs TEXT NOT NULL DEFAULT '[]',
    frazil_version TEXT NOT NULL DEFAULT '',
    config_version INTEGER,
    requirement_changes TEXT NOT NULL DEFAULT '{}',
    time_used REAL,
    UNIQUE (task_id, attempt)
);

CREATE TABLE outputs (
    seq INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha512 TEXT NOT NULL,
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    instance_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX ix_outputs_url ON outputs(url);

CREATE TABLE task_stats (
    seq INTEGER PRIMARY KEY,
    task_stat_id TEXT NOT NULL UNIQUE,
    task_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    create_date TEXT NOT NULL,
    stats TEXT NOT NULL
);
CREATE INDEX ix_task_stats_task ON task_stats(task_id);
CREATE INDEX ix_task_stats_dataset ON task_stats(dataset_id);

CREATE TABLE logs (
    seq INTEGER PRIMARY KEY,
    log_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    data TEXT,
    size INTEGER NOT NULL,
    chunked INTEGER NOT NULL DEFAULT 0,
    timestamp TEXT NOT NULL,
    dataset_id TEXT NOT NULL DEFAULT '',
    task_id TEXT NOT NULL DEFAULT '',
    attempt INTEGER
);
CREATE INDEX ix_logs_task ON logs(task_id, timestamp);
CREATE INDEX ix_logs_dataset ON logs(dataset_id);
CREATE TABLE log_chunks (
    log_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (log_id, n)
);

CREATE TABLE files (
    seq INTEGER PRIMARY KEY,
    file_id TEXT NOT NULL UNIQUE,
    dataset_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    remote TEXT NOT NULL,
    movement TEXT NOT NULL,
    local TEXT NOT NULL,
    type TEXT NOT NULL,
    transfer TEXT NOT NULL,
    compression INTEGER NOT NULL
);
CREATE INDEX ix_files_dataset ON files(dataset_id);
CREATE INDEX ix_files_task ON files(task_id);

CREATE TABLE pilots (
    seq INTEGER PRIMARY KEY,
    pilot_id TEXT NOT NULL UNIQUE,
    resources TEXT NOT NULL,
    free TEXT NOT NULL,
    site TEXT NOT NULL,
    hostname TEXT NOT NULL,
    os TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_job_id TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    drain INTEGER NOT NULL DEFAULT 0,
    tasks TEXT NOT NULL DEFAULT '[]',
    registered TEXT NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX ix_pilots_state ON pilots(state, last_seen);
CREATE INDEX ix_pilots_site ON pilots(site);

CREATE TABLE users (
    seq INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL UNIQUE,
    priority REAL NOT NULL
);
CREATE TABLE groups (name TEXT PRIMARY KEY, priority REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE usage (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    core_hours REAL NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

CREATE TABLE loop_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL) WITHOUT ROWID;

CREATE TABLE scratch_files (
    path TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    job_index INTEGER,
    size INTEGER NOT NULL,
    sha512 TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX ix_scratch_job ON scratch_files(dataset_id, job_index);
"""

V2_DDL = """
CREATE TABLE resource_classes (
    class_id INTEGER PRIMARY KEY,
    class_key TEXT NOT NULL UNIQUE,
    resource_class TEXT NOT NULL,
    cpu INTEGER NOT NULL, gpu INTEGER NOT NULL,
    memory REAL NOT NULL, disk REAL NOT NULL, time REAL NOT NULL,
    min_cpu INTEGER NOT NULL, min_memory REAL NOT NULL, min_disk REAL NOT NULL, min_time REAL NOT NULL,
    site TEXT NOT NULL,
    os TEXT NOT NULL,
    os_key TEXT NOT NULL,
    queued INTEGER NOT NULL DEFAULT 0,
    top REAL NOT NULL DEFAULT 0
);
CREATE INDEX ix_classes_claim ON resource_classes(gpu, top DESC, min_cpu, min_memory, min_disk, min_time, site,
    os_key, cpu, memory, disk, time) WHERE queued > 0;
ALTER TABLE tasks ADD COLUMN class_id INTEGER NOT NULL DEFAULT 0;
DROP INDEX ix_tasks_queued;
CREATE INDEX ix_tasks_claim ON tasks(class_id, priority DESC, seq) WHERE status = 'queued';
"""


V3_DDL = """
CREATE TABLE actions (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    locked_at REAL,
    error_message TEXT NOT NULL DEFAULT '',
    progress REAL NOT NULL DEFAULT 0,
    dataset_id TEXT,
    dedupe_key TEXT
);
CREATE INDEX ix_actions_queue ON actions(status, priority DESC, seq);
CREATE INDEX ix_actions_action ON actions(action, status);
CREATE INDEX ix_actions_dataset ON actions(action, dataset_id, seq);
CREATE INDEX ix_actions_dedupe ON actions(action, dedupe_key) WHERE status IN ('queued', 'processing')
"""


# The dataset page's "task status by task name" table counts a dataset's tasks
# by (name, status): a covering index answers it from the index alone (about
# 0.13 s instead of 0.85 s for a 1,000,000-task dataset). ix_tasks_dataset is
# a prefix of two other indexes, so dropping it pays for the new one's writes.
V4_DDL = """
CREATE INDEX ix_tasks_dataset_name_status ON tasks(dataset_id, name, status, task_index);
DROP INDEX ix_tasks_dataset
"""


# Stored credentials (issue 13): the secret is a Fernet token the server encrypts.
CREDENTIALS_DDL = """
CREATE TABLE credentials (
    owner_kind TEXT NOT NULL, owner TEXT NOT NULL, url TEXT NOT NULL, type TEXT NOT NULL,
    secret TEXT NOT NULL, transfer_prefix TEXT NOT NULL DEFAULT '', scope TEXT NOT NULL DEFAULT '',
    buckets TEXT NOT NULL DEFAULT '[]', expiration REAL, refreshable INTEGER NOT NULL DEFAULT 0,
    last_use REAL, last_refresh REAL, refresh_error TEXT NOT NULL DEFAULT '', created TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (owner_kind, owner, url)
) WITHOUT ROWID;
CREATE INDEX ix_credentials_refresh ON credentials(refreshable, expiration)
"""

V6_DDL = """
ALTER TABLE tasks ADD COLUMN prio_offset REAL NOT NULL DEFAULT 0;
ALTER TABLE datasets ADD COLUMN task_base REAL NOT NULL DEFAULT 0;
DROP INDEX ix_tasks_waiting;
DROP INDEX ix_tasks_releasable;
CREATE INDEX ix_tasks_waiting ON tasks(dataset_id, prio_offset DESC, seq) WHERE status = 'waiting';
CREATE INDEX ix_tasks_releasable ON tasks(dataset_id, seq) WHERE status = 'idle' AND deps_pending = 0;
CREATE INDEX ix_tasks_dataset ON tasks(dataset_id)
"""

SOURCES_DDL = """
CREATE TABLE source_blobs (sha512 TEXT PRIMARY KEY, content BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE config_sources (
    dataset_id TEXT NOT NULL, version INTEGER NOT NULL, path TEXT NOT NULL, sha512 TEXT NOT NULL,
    PRIMARY KEY (dataset_id, version, path)
) WITHOUT ROWID;
CREATE INDEX ix_config_sources_blob ON config_sources(dataset_id, sha512)
"""
"""Module sources carried at submit (version 8): blobs by sha512, manifests per config version."""

OFFSET_SQL = """(SELECT task_priority_offset(tasks.job_index, tasks.task_index, d.tasks_per_job, d.jobs_submitted)
                 FROM datasets d WHERE d.dataset_id = tasks.dataset_id)"""
"""A task's ``prio_offset`` from its row and its dataset (needs :func:`add_functions`)."""


def add_functions(conn: sqlite3.Connection) -> None:
    """SQL access to the one priority formula (``rules.task_priority_offset``)."""
    conn.create_function("task_priority_offset", 4, task_priority_offset, deterministic=True)


def run_ddl(conn: sqlite3.Connection, ddl: str) -> None:
    """Statement by statement: ``executescript`` would COMMIT the migration's
    transaction first and lose its atomicity."""
    for statement in ddl.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migrate_1(conn: sqlite3.Connection) -> None:
    run_ddl(conn, V1_DDL)
    conn.execute("INSERT INTO schema_version VALUES (0)")


def _migrate_2(conn: sqlite3.Connection) -> None:
    run_ddl(conn, V2_DDL)
    # Classify the tasks a version-1 file already holds with the live code path: old and new land in the same classes.
    cache = ClassCache(conn)
    updates = []
    for row in conn.execute("SELECT seq, requirements FROM tasks").fetchall():
        shape = task_shape(json.loads(row["requirements"]))
        updates.append((cache.class_id(shape), shape.resource_class, row["seq"]))
    conn.executemany("UPDATE tasks SET class_id = ?, resource_class = ? WHERE seq = ?", updates)
    conn.execute("""UPDATE resource_classes SET
                    queued = (SELECT count(*) FROM tasks
                              WHERE tasks.class_id = resource_classes.class_id AND tasks.status = 'queued'),
                    top = coalesce((SELECT max(priority) FROM tasks
                              WHERE tasks.class_id = resource_classes.class_id AND tasks.status = 'queued'), 0)""")


def _migrate_3(conn: sqlite3.Connection) -> None:
    run_ddl(conn, V3_DDL)


def _migrate_4(conn: sqlite3.Connection) -> None:
    run_ddl(conn, V4_DDL)


def _migrate_credentials(conn: sqlite3.Connection) -> None:
    run_ddl(conn, CREDENTIALS_DDL)


def _migrate_6(conn: sqlite3.Connection) -> None:
    run_ddl(conn, V6_DDL)
    add_functions(conn)
    # one pass over the tasks the file holds; new tasks get theirs on insert
    conn.execute(f"UPDATE tasks SET prio_offset = coalesce({OFFSET_SQL}, {NO_PRIORITY_OFFSET})")


REVOCATIONS_DDL = """
CREATE TABLE revocations (subject TEXT PRIMARY KEY, revoked_at REAL NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)
WITHOUT ROWID;
"""


def _migrate_revocations(conn: sqlite3.Connection) -> None:
    run_ddl(conn, REVOCATIONS_DDL)


def _migrate_sources(conn: sqlite3.Connection) -> None:
    run_ddl(conn, SOURCES_DDL)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_1, _migrate_2, _migrate_3, _migrate_4,
                                                          _migrate_credentials, _migrate_6, _migrate_revocations,
                                                          _migrate_sources, migrate_attempt_ends, migrate_log_time,
                                                          migrate_quarantines, migrate_alerts, migrate_retry_pacing]
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """0 for an empty file; SchemaVersionError for a file that is not ours."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        if tables:
            raise SchemaVersionError(
                f"not a frazil store: the file has tables ({', '.join(sorted(tables)[:5])}) "
                "but no schema_version table")
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        raise SchemaVersionError("corrupt frazil store: the schema_version table is empty")
    return int(row[0])


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the file to SCHEMA_VERSION; returns the version found before."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = current_version(conn)
    finally:
        conn.execute("COMMIT")
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has store schema version {found}, newer than this frazil understands "
            f"({SCHEMA_VERSION}); upgrade frazil or use another store file")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have migrated meanwhile.
            if current_version(conn) >= version:
                conn.execute("COMMIT")
                continue
            MIGRATIONS[version - 1](conn)
            conn.execute("UPDATE schema_version SET version = ?", (version,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return found
