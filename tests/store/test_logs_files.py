"""Contract: logs (streaming, large, grouped), files, scratch records,
task_stats documents, provenance."""
from __future__ import annotations

import pytest

from server.store import (
    AttemptResult, InvalidArgumentError, ListOptions, LogFilter, NewLog, NotFoundError, OutputFile, ScratchFile,
    Store,
)

from .helpers import chain_jobs, new_dataset, pilot

MB = 1_000_000


async def test_add_get_and_append(store: Store) -> None:
    log_id = await store.add_log(NewLog("stdout", "hello\n", dataset_id="d1", task_id="t1", attempt=1))
    assert await store.append_log(log_id, "world\n") == 12
    log = await store.get_log(log_id)
    assert log and log.data == "hello\nworld\n" and log.size == 12 and log.attempt == 1 and log.name == "stdout"
    assert await store.get_log("missing") is None
    with pytest.raises(NotFoundError):
        await store.append_log("missing", "x")
    with pytest.raises(InvalidArgumentError):
        await store.add_log(NewLog("stdout", b"bytes"))  # type: ignore[arg-type]


async def test_large_logs_are_reassembled(store: Store) -> None:
    big = "".join(f"line {i:07d}\n" for i in range(250_000))  # 3.25 MB
    log_id = await store.add_log(NewLog("stderr", big, task_id="t1"))
    assert (await store.get_log(log_id)).data == big  # type: ignore[union-attr]
    # a streamed log that grows past 1 MB moves out of the hot table and keeps every byte
    streamed = await store.add_log(NewLog("stdout", "start\n", task_id="t1"))
    pieces = ["x" * 300_000 + "\n" for _ in range(5)]
    for piece in pieces:
        await store.append_log(streamed, piece)
    log = await store.get_log(streamed)
    assert log and log.data == "start\n" + "".join(pieces) and log.size == len(log.data)
    [listed] = (await store.list_logs(LogFilter(task_id="t1", name=["stdout"]))).rows
    assert listed["data"] == log.data


async def test_task_logs_group_order_num_and_delete(store: Store) -> None:
    ids = []
    for i, name in enumerate(["stdout", "stderr", "stdout", "stdlog"]):
        ids.append(await store.add_log(NewLog(name, f"{name}-{i}", dataset_id="d1", task_id="t1")))
    await store.add_log(NewLog("stdout", "other task", dataset_id="d1", task_id="t2"))
    logs = await store.task_logs("t1")
    assert [entry.data for entry in logs] == ["stdlog-3", "stdout-2", "stderr-1", "stdout-0"]  # newest first
    grouped = await store.task_logs("t1", group=True)
    assert sorted(entry.data for entry in grouped) == ["stderr-1", "stdlog-3", "stdout-2"]
    assert [entry.data for entry in await store.task_logs("t1", order="asc", num=2)] == ["stdout-0", "stderr-1"]
    page = await store.list_logs(LogFilter(dataset_id="d1"), ListOptions(keys=["name"], limit=3))
    assert len(page.rows) == 3 and set(page.rows[0]) == {"log_id", "name"} and page.next_cursor
    assert await store.delete_log(ids[0]) and not await store.delete_log(ids[0])
    assert await store.delete_logs(task_id="t1") == 3
    assert await store.task_logs("t1") == []
    assert await store.delete_logs(dataset_id="d1") == 1
    with pytest.raises(InvalidArgumentError):
        await store.task_logs("t1", order="sideways")


async def test_files_resolved_to_tasks(store: Store) -> None:
    ds = await new_dataset(store, jobs=2)
    jobs = chain_jobs(2, names=("gen", "sim"))
    await store.create_jobs(ds.dataset_id, jobs)
    f1 = await store.add_file(ds.dataset_id, "gsiftp://x/out.i3", "output", job_index=1, task_name="sim",
                              local="out.i3", compression=True)
    assert f1.task_id == jobs[1].tasks[1].task_id and f1.compression
    f2 = await store.add_file(ds.dataset_id, "http://x/in.i3", "input", task_id=jobs[0].tasks[0].task_id)
    with pytest.raises(NotFoundError):
        await store.add_file(ds.dataset_id, "x", "input", job_index=5, task_name="sim")
    with pytest.raises(InvalidArgumentError, match="movement"):
        await store.add_file(ds.dataset_id, "x", "sideways", task_id=f2.task_id)
    assert [f.file_id for f in await store.list_files(ds.dataset_id)] == [f1.file_id, f2.file_id]
    assert await store.list_files(ds.dataset_id, f1.task_id) == [f1]
    assert await store.delete_files(ds.dataset_id, f1.task_id) == 1
    assert await store.list_files(ds.dataset_id) == [f2]


async def test_scratch_records(store: Store) -> None:
    for job, name in [(0, "a"), (0, "b"), (1, "c")]:
        await store.add_scratch_file(ScratchFile("d1", f"/scratch/d1/{job}/{name}", 10, "f" * 128, job))
    await store.add_scratch_file(ScratchFile("d1", "/scratch/d1/shared", 5, "e" * 128, None))
    assert [f.path for f in await store.list_scratch_files("d1", 0)] == ["/scratch/d1/0/a", "/scratch/d1/0/b"]
    assert len(await store.list_scratch_files("d1")) == 4
    gone = await store.delete_scratch_files("d1", 0)
    assert [f.path for f in gone] == ["/scratch/d1/0/a", "/scratch/d1/0/b"] and gone[0].size == 10
    assert [f.path for f in await store.list_scratch_files("d1")] == ["/scratch/d1/1/c", "/scratch/d1/shared"]


async def test_task_stat_documents(store: Store) -> None:
    first = await store.add_task_stat("t1", "d1", {"hostname": "h", "resources": {"cpu": 1}})
    second = await store.add_task_stat("t1", "d1", {"hostname": "h2"})
    await store.add_task_stat("t2", "d1", {"hostname": "h3"})
    got = await store.get_task_stat(first)
    assert got and got.stats == {"hostname": "h", "resources": {"cpu": 1}} and got.task_id == "t1"
    page = await store.list_task_stats(task_id="t1")
    assert [r["task_stat_id"] for r in page.rows] == [first, second]
    page = await store.list_task_stats(task_id="t1", last=True)
    assert [r["task_stat_id"] for r in page.rows] == [second]
    page = await store.list_task_stats(dataset_id="d1", last=True, opts=ListOptions(keys=["task_id"]))
    assert sorted(r["task_id"] for r in page.rows) == ["t1", "t2"]
    assert await store.get_task_stat("missing") is None


async def test_provenance_by_output_url(store: Store) -> None:
    ds = await new_dataset(store, jobs=1, tasks_per_job=1)
    version = await store.add_config_version(ds.dataset_id, {"tasks": []}, "alice")
    jobs = chain_jobs(1, names=("only",), status="queued")
    await store.create_jobs(ds.dataset_id, jobs, config_version=version)
    c = await store.claim(pilot())
    assert c is not None
    url = "gsiftp://gridftp.example/data/sim/out_000001.i3.zst"
    await store.complete(c.task.task_id, c.instance_id,
                         AttemptResult(time_used=10, outputs=[OutputFile(url, 1234, "a" * 128)]))
    [record] = await store.provenance(url)
    assert (record.dataset_id, record.dataset, record.job_id, record.job_index, record.task_id, record.task_name,
            record.attempt, record.instance_id) == (ds.dataset_id, ds.dataset, jobs[0].job_id, 0,
                                                    c.task.task_id, "only", 1, c.instance_id)
    assert (record.size, record.sha512) == (1234, "a" * 128)
    assert record.config_version == version == 1
    assert await store.provenance("file:///nowhere") == []


async def test_logs_before_walks_by_age_and_deletes_by_id(store: Store) -> None:
    ids = [await store.add_log(NewLog(name, "x", dataset_id=ds, task_id="t1", attempt=1))
           for name, ds in (("stdout", "d1"), ("stdlog", "d1"), ("stdout", "d2"), ("stderr", "d1"))]
    big = await store.add_log(NewLog("stdout", "y" * (MB + 10), dataset_id="d1", task_id="t2"))
    everything = await store.logs_before("9999-01-01T00:00:00.000000")
    assert [r.log_id for r in everything] == [*ids, big]  # oldest first
    assert everything[0].name == "stdout" and everything[0].attempt == 1 and everything[-1].size == MB + 10
    assert await store.logs_before("2000-01-01T00:00:00.000000") == []  # nothing that old
    assert [r.log_id for r in await store.logs_before("9999", name="stdout")] == [ids[0], ids[2], big]
    assert [r.log_id for r in await store.logs_before("9999", dataset_id="d1")] == [ids[0], ids[1], ids[3], big]
    first = await store.logs_before("9999", name="stdout", limit=1)
    rest = await store.logs_before("9999", name="stdout", after=(first[0].timestamp, first[0].log_id))
    assert [r.log_id for r in first + rest] == [ids[0], ids[2], big]  # the cursor continues
    with pytest.raises(InvalidArgumentError):
        await store.logs_before("9999", limit=0)
    names = await store.log_names()
    assert {n: c for n, (c, _) in names.items()} == {"stderr": 1, "stdlog": 1, "stdout": 3}
    assert names["stdout"][1] == everything[0].timestamp
    assert await store.delete_log_ids([ids[0], big, "missing", big]) == 2
    assert await store.get_log(big) is None and await store.get_log(ids[0]) is None
    assert await store.delete_log_ids([]) == 0
    assert [r.log_id for r in await store.logs_before("9999")] == [ids[1], ids[2], ids[3]]
