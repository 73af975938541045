"""Issue 16 item 7: the log-retention loop on a real SQLite store — two
settings (frazil's own logs, task stdout/stderr), per-dataset overrides in
the config's options, the newest attempt of a failed task kept until its
dataset completes, bounded batches that walk on past kept logs."""
from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import AsyncIterator

import pytest

from common.resources import Resources
from server.metrics import ServerMetrics
from server.scheduling.loops import Scheduler
from server.scheduling.retention import LogRetention, retention_summary
from server.settings import Settings
from server.store import AttemptResult, ClaimRequest, NewDataset, NewLog, NewPilot, Store, open_store

DEMO = json.loads((pathlib.Path(__file__).parents[2] / "examples" / "local-demo.json").read_text())
DAY = 86_400.0


async def dataset(store: Store, options: dict | None = None) -> str:
    ds = await store.create_dataset(NewDataset(description="t", jobs_submitted=1, tasks_per_job=2,
                                               group="users", username="alice"))
    await store.add_config_version(ds.dataset_id, {**DEMO, **({"options": options} if options else {})}, "alice")
    return ds.dataset_id


async def drain(retention: LogRetention, now: float) -> int:
    """Rounds until one does not fill a page (what the loop runner does)."""
    rounds = 1
    while await retention.run(now):
        rounds += 1
    return rounds


async def test_retention_by_kind_override_and_failed_tasks(store: Store, tmp_path: pathlib.Path) -> None:
    settings = Settings(db="", data_dir=str(tmp_path), provider="none", materialize_batch=10,
                        log_cleanup_batch=2)  # tiny pages: the cursors must carry the walk on
    plain = await dataset(store)
    short = await dataset(store, {"task_log_retention_days": 2, "log_retention_days": 0})
    scheduler = Scheduler(store, settings, lambda name: None, ServerMetrics())
    await scheduler.materialize()
    await scheduler.release()
    await scheduler.queue()
    # the first task of `plain` fails: attempt 1 is reset, attempt 2 fails for good
    pilot_id = await store.register_pilot(NewPilot(resources={"cpu": 8}))
    free = Resources(cpu=8, gpu=0, memory=16.0, disk=100.0, time=24.0)
    logs: dict[str, str] = {}
    failing = None
    for attempt in (1, 2):
        while True:
            claimed = await store.claim(ClaimRequest(pilot_id=pilot_id, free=free))
            assert claimed.task is not None
            if claimed.task.dataset_id == plain and (failing is None or claimed.task.task_id == failing):
                break
            await store.complete(claimed.task.task_id, claimed.instance_id, AttemptResult(time_used=1))
            await store.add_log(NewLog("stdout", "ok", dataset_id=claimed.task.dataset_id,
                                       task_id=claimed.task.task_id, attempt=1))
            await scheduler.release()
            await scheduler.queue()
        failing = claimed.task.task_id
        for name in ("stdout", "stdlog"):
            logs[f"{name}{attempt}"] = await store.add_log(NewLog(name, f"attempt {attempt}", dataset_id=plain,
                                                                  task_id=failing, attempt=attempt))
        report = (store.reset if attempt == 1 else store.fail)
        assert (await report(failing, claimed.instance_id, AttemptResult(time_used=1))).applied
        await scheduler.queue()
    assert (await store.get_task(failing)).status == "failed"  # type: ignore[union-attr]
    logs["short_stdout"] = await store.add_log(NewLog("stdout", "x", dataset_id=short, task_id="elsewhere"))
    logs["short_stdlog"] = await store.add_log(NewLog("stdlog", "x", dataset_id=short, task_id="elsewhere"))
    logs["plain_stdlog"] = await store.add_log(NewLog("stdlog", "x", dataset_id=plain, task_id="other"))
    before = {r.log_id for r in await store.logs_before("9999")}

    metrics = ServerMetrics()
    retention = LogRetention(store, settings, metrics)
    now = time.time()
    await drain(retention, now + 1 * DAY)
    assert {r.log_id for r in await store.logs_before("9999")} == before  # nothing is old enough yet

    await drain(retention, now + 3 * DAY)  # past the dataset's 2 days for stdout; its stdlog is kept (0)
    left = {r.log_id for r in await store.logs_before("9999")}
    assert logs["short_stdout"] not in left and logs["short_stdlog"] in left
    assert before - left == {logs["short_stdout"]}

    await drain(retention, now + 40 * DAY)  # frazil's own logs (31 days) go, but not the failed task's newest
    left = {r.log_id for r in await store.logs_before("9999")}
    assert logs["stdlog1"] not in left and logs["plain_stdlog"] not in left
    assert logs["stdlog2"] in left and logs["stdout1"] in left and logs["stdout2"] in left

    await drain(retention, now + 400 * DAY)  # stdout/stderr (a year): the failed attempt 2 stays
    left = {r.log_id for r in await store.logs_before("9999")}
    assert left == {logs["stdlog2"], logs["stdout2"], logs["short_stdlog"]}
    assert retention.report.kept_failed >= 2

    await store.set_dataset_status(plain, "complete", force=True)  # done: its evidence may go too
    await drain(retention, now + 400 * DAY)
    assert {r.log_id for r in await store.logs_before("9999")} == {logs["short_stdlog"]}

    total = len(before) - 1
    assert sum(retention.report.removed.values()) == total
    assert retention.report.removed["own"] == 3  # stdlog1, stdlog2, plain_stdlog
    sample = {s.labels["kind"]: s.value for s in metrics.logs_removed.collect()[0].samples
              if s.name.endswith("_total")}
    assert sample == {"own": 3.0, "task": total - 3}
    summary = await retention_summary(store, settings, retention)
    assert summary["stored"] == [{"name": "stdlog", "kind": "own", "count": 1, "oldest": summary["stored"][0]["oldest"],
                                  "days": 31.0}]
    assert summary["removed"] == retention.report.removed and summary["last_round"]


async def test_zero_keeps_everything(store: Store, tmp_path: pathlib.Path) -> None:
    settings = Settings(db="", data_dir=str(tmp_path), provider="none", log_retention_days=0,
                        task_log_retention_days=0)
    plain = await dataset(store)
    ids = {await store.add_log(NewLog(name, "x", dataset_id=plain, task_id="t")) for name in ("stdout", "stdlog")}
    retention = LogRetention(store, settings, ServerMetrics())
    assert await retention.run(time.time() + 10_000 * DAY) is False
    assert {r.log_id for r in await store.logs_before("9999")} == ids
    assert dataclasses.asdict(retention.report)["removed"] == {"own": 0, "task": 0}
