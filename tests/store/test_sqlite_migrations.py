"""SQLite only: schema versions and migrations of the store file."""
from __future__ import annotations

import json
import pathlib
import sqlite3

import pytest

from server.store import InvalidArgumentError, SchemaVersionError, TaskFilter, open_store
from server.store.rules import task_priority_offset
from server.store.sqlite.schema import SCHEMA_VERSION, V1_DDL, run_ddl

from .helpers import pilot

NOW = "2026-01-01T00:00:00.000000"


def _v1_file(path: pathlib.Path) -> None:
    """A store as the first release wrote it, built by hand from the v1 DDL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    run_ddl(conn, V1_DDL)
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO counters VALUES ('dataset_num', 1)")
    conn.execute("""INSERT INTO datasets (dataset_id, dataset, description, jobs_submitted, tasks_submitted,
                    tasks_per_job, grp, username, status, start_date, status_changed)
                    VALUES ('ds1', 1, 'old', 1, 3, 3, 'simprod', 'alice', 'processing', ?, ?)""", (NOW, NOW))
    conn.execute("INSERT INTO jobs (job_id, dataset_id, job_index, status, status_changed) "
                 "VALUES ('job1', 'ds1', 0, 'processing', ?)", (NOW,))
    for i, (status, req, prio) in enumerate([("queued", {"memory": 2}, 0.2), ("queued", {"gpu": 1}, 0.9),
                                             ("waiting", {}, 0.5)]):
        conn.execute("""INSERT INTO tasks (task_id, dataset_id, job_id, job_index, task_index, name, depends,
                        requirements, status, status_changed, priority, req_cpu, req_gpu, req_memory, req_disk,
                        req_time) VALUES (?, 'ds1', 'job1', 0, ?, ?, '[]', ?, ?, ?, ?, 1, ?, ?, 1, 1)""",
                     (f"t{i}", i, f"task{i}", json.dumps(req), status, NOW, prio, req.get("gpu", 0),
                      req.get("memory", 1)))
    conn.execute("COMMIT")
    conn.close()


async def test_version_1_file_is_migrated(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "old.db"
    _v1_file(path)
    store = await open_store(f"sqlite:///{path}")
    try:
        assert sorted((c.resource_class, c.queued) for c in await store.queued_classes()) == [
            ("cpu1-gpu1-mem1-disk1-t1", 1), ("cpu1-mem2-disk1-t1", 1)]
        got = await store.claim(pilot(memory=4))
        assert got and got.task.task_id == "t0" and got.task.resource_class == "cpu1-mem2-disk1-t1"
        assert (await store.claim(pilot(gpu=1))).task.task_id == "t1"  # type: ignore[union-attr]
        assert await store.queue_tasks(5) == ["t2"]
        ds = await store.get_dataset("ds1")
        assert ds and ds.description == "old"
        message = await store.add_action("submit", {})  # table of version 3
        assert message.status == "queued"
        assert await store.task_counts_by_status(TaskFilter(dataset_id="ds1")) == {"processing": 2, "queued": 1}
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    # version 6: the tasks the file held got their priority offsets from their indexes
    offsets = dict(conn.execute("SELECT task_id, prio_offset FROM tasks").fetchall())
    assert offsets == pytest.approx({f"t{i}": task_priority_offset(0, i, 3, 1) for i in range(3)})
    indexes = {name: sql for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")}
    assert "(dataset_id, prio_offset DESC, seq)" in indexes["ix_tasks_waiting"]
    # version 13: paced retries (not_before) are out of the waiting index, in their own
    assert "not_before IS NULL" in indexes["ix_tasks_waiting"] and "ix_tasks_not_before" in indexes
    assert conn.execute("SELECT count(*) FROM tasks WHERE not_before IS NOT NULL").fetchone()[0] == 0
    assert "(dataset_id, seq)" in indexes["ix_tasks_releasable"] and "ix_tasks_dataset" in indexes
    conn.close()


async def test_future_version_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "future.db"
    store = await open_store(f"sqlite:///{path}")
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match="newer than this frazil understands"):
        await open_store(f"sqlite:///{path}")


async def test_foreign_file_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE stuff (x)")
    conn.close()
    with pytest.raises(SchemaVersionError, match="not a frazil store"):
        await open_store(f"sqlite:///{path}")


async def test_reopen_keeps_data_and_creates_folders(tmp_path: pathlib.Path) -> None:
    url = f"sqlite:///{tmp_path}/deep/er/store.db"
    store = await open_store(url)
    user = await store.create_user("alice")
    await store.close()
    store = await open_store(url)
    try:
        assert await store.get_user("alice") == user
    finally:
        await store.close()


async def test_bad_urls(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentError, match="sqlite:///"):
        await open_store("sqlite://relative.db")
    with pytest.raises(InvalidArgumentError, match="unsupported store URL"):
        await open_store("postgres://localhost/db")
