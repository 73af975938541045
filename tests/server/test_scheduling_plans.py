"""Scale (issue 17): the loops' statements on a large dataset use indexes.

A dataset of 20,000 two-task jobs is materialized for real (a couple of
seconds), then release, queue (with a second dataset to merge), roll-up and
listing pages run with every SQL statement traced. Each traced statement that
touches ``tasks`` or ``jobs`` is explained (``EXPLAIN QUERY PLAN``): none may
scan either table, nor sort (temp B-tree) anything but a list of ids. The
wall time is not asserted (benchmarks/scale.py measures it); the plans are
what keeps a round's cost independent of the backlog.
"""
from __future__ import annotations

import re
import sqlite3
from typing import AsyncIterator

import pytest
from common.resources import Resources
from server.metrics import ServerMetrics
from server.scheduling.loops import Scheduler
from server.settings import Settings
from server.store import AttemptResult, ClaimRequest, RetryPolicy, ListOptions, NewPilot, TaskFilter, JobFilter, open_store
from server.store.sqlite import connection
from server.store.sqlite.schema import add_functions

from .test_scheduling_loops import make_dataset

JOBS = 20_000
TOUCHES = re.compile(r"\b(tasks|jobs)\b")
LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?(?:e-?\d+)?\b")


class Traced:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def connect(self, path: str, *args: object) -> sqlite3.Connection:
        conn = ORIGINAL_CONNECT(path, *args)  # type: ignore[arg-type]
        conn.set_trace_callback(self.statements.append)
        return conn

    def take(self) -> list[str]:
        """The distinct statement shapes traced since the last call (one
        example of each: an executemany of 10,000 updates is one shape)."""
        shapes: dict[str, str] = {}
        for sql in self.statements:
            if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")) and TOUCHES.search(sql):
                shapes.setdefault(LITERAL.sub("?", sql), sql)
        self.statements.clear()
        return list(shapes.values())


ORIGINAL_CONNECT = connection.connect


def plan_problems(conn: sqlite3.Connection, statements: list[str]) -> list[str]:
    problems = []
    for sql in statements:
        details = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]
        by_id = any("(task_id=?)" in d or "(job_id=?)" in d for d in details)
        for d in details:
            if re.match(r"SCAN (tasks|jobs)\b", d) or ("TEMP B-TREE" in d and not by_id):
                problems.append(f"{d}  <-  ...{sql[-400:]}")
    return problems


@pytest.fixture
async def traced(tmp_path, monkeypatch) -> AsyncIterator[tuple[Scheduler, Traced, str]]:
    trace = Traced()
    monkeypatch.setattr(connection, "connect", trace.connect)
    path = f"{tmp_path}/frazil.db"
    settings = Settings(db=f"sqlite:///{path}", data_dir=str(tmp_path / "data"), provider="none",
                        materialize_batch=JOBS, queue_target=4000, queue_batch=2000, backlog_limit=10 ** 7)
    store = await open_store(settings.db)
    try:
        yield Scheduler(store, settings, lambda name: None, ServerMetrics()), trace, path
    finally:
        await store.close()


async def test_loop_statements_use_indexes_on_a_large_dataset(traced) -> None:
    sched, trace, path = traced
    store = sched.store
    big = await make_dataset(store, jobs=JOBS)
    small = await make_dataset(store, jobs=50, username="bob")
    while await sched.materialize():
        pass
    assert await store.max_job_index(big) == JOBS - 1
    trace.take()

    # the loops' rounds: release all first tasks, queue (merging two datasets), roll up
    while await sched.release():
        pass
    assert await sched.queue() is True  # stopped at the batch limit
    await sched.queue()
    counts = await store.task_counts_by_status(TaskFilter(dataset_id=big))
    assert counts["queued"] + counts["waiting"] == JOBS and counts["idle"] == JOBS
    assert (await store.task_counts_by_status(TaskFilter(dataset_id=small))).get("queued", 0) > 0
    loops = trace.take()

    pilot_id = await store.register_pilot(NewPilot(resources={"cpu": 8}))
    free = Resources(cpu=8, gpu=0, memory=16.0, disk=100.0, time=24.0)
    paced = RetryPolicy(retry_delay=3600)
    for n in range(20):
        claimed = await store.claim(ClaimRequest(pilot_id=pilot_id, free=free, lease_seconds=600))
        assert claimed is not None
        if n < 3:  # paced retries: held back an hour, and never read by queueing meanwhile
            assert (await store.reset(claimed.task.task_id, claimed.instance_id,
                                      AttemptResult(kind="transfer"), paced)).status == "waiting"
            continue
        assert (await store.complete(claimed.task.task_id, claimed.instance_id, AttemptResult(time_used=1))).applied
        sched.note_changed(claimed.task.dataset_id, claimed.task.job_id)
    trace.take()
    await sched.queue()  # makes no paced retry eligible, and probes for the next wake-up
    assert await store.next_not_before() is not None
    await sched.rollup()
    await sched.rollup()  # the sweep's next page
    while await sched.release():  # the second tasks of the finished first tasks' jobs
        pass
    loops += trace.take()

    # listings a client walks: the second page of each (keyset conditions)
    for task_filter, sort in ((TaskFilter(dataset_id=big), ()), (TaskFilter(dataset_id=big), (("job_index", 1),)),
                              (TaskFilter(dataset_id=big, status=["waiting"]), ())):
        first = await store.list_tasks(task_filter, ListOptions(limit=100, sort=sort))
        assert first.next_cursor is not None
        await store.list_tasks(task_filter, ListOptions(limit=100, sort=sort, after=first.next_cursor))
    first = await store.list_jobs(JobFilter(dataset_id=big, status=["processing"]), ListOptions(limit=100))
    await store.list_jobs(JobFilter(dataset_id=big, status=["processing"]),
                          ListOptions(limit=100, after=first.next_cursor))
    listings = trace.take()

    conn = sqlite3.connect(path)
    add_functions(conn)
    try:
        assert len(loops) > 10 and any("ix_tasks_waiting" in s for s in loops)
        assert sum("ix_tasks_not_before" in s for s in loops) >= 2  # eligible ones, and the next wake-up
        assert any("(job_index, seq) > (" in s for s in listings)  # the row-value keyset form
        problems = plan_problems(conn, loops + listings)
        assert problems == [], "\n".join(problems)
    finally:
        conn.close()
