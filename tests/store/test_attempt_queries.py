"""Contract: attempts across tasks — by end time (paged), a dataset's newest,
counts since a time, the last attempt of given tasks."""
from __future__ import annotations

from server.store import AttemptResult, FailureClass, Store

from .helpers import pilot, queued_dataset


async def _run_all(store: Store, n: int) -> tuple[str, list[str]]:
    """n single-task jobs: even ones complete, odd ones fail (memory) then run again and complete."""
    ds, _ = await queued_dataset(store, n)
    ids: list[str] = []
    while (got := await store.claim(pilot())) is not None:
        tid = got.task.task_id
        ids.append(tid)
        if got.task.job_index % 2:
            await store.reset(tid, got.instance_id, AttemptResult(time_used=60, site="S1", host="bad",
                                                                  failure_class=FailureClass.NONPHYSICS,
                                                                  kind="memory", rule="oom"))
            await store.queue_tasks(10)
            again = await store.claim(pilot())
            assert again is not None and again.task.task_id == tid
            await store.complete(tid, again.instance_id, AttemptResult(time_used=3600, site="S2", host="good"))
        else:
            await store.complete(tid, got.instance_id, AttemptResult(time_used=7200, site="S2", host="good"))
    return ds.dataset_id, ids


async def test_attempt_queries(store: Store) -> None:
    dataset_id, ids = await _run_all(store, 6)
    assert len(ids) == 6
    # by end time, paged: every finished attempt once (6 completes + 3 resets)
    seen, after = [], None
    while True:
        page, after = await store.attempts_ended("2000-01-01", "9999-12-31", after=after, limit=4)
        seen += page
        if after is None:
            break
    assert len(seen) == 9 and len({a.instance_id for a in seen}) == 9
    assert [a.end for a in seen] == sorted(a.end for a in seen)  # type: ignore[type-var]
    assert (await store.attempts_ended("9999-12-31", "9999-12-31T99"))[0] == []
    ends = sorted(a.end for a in seen)  # type: ignore[type-var]
    assert [a.end for a in (await store.attempts_ended(ends[2], ends[5]))[0]] == ends[2:5]
    # a dataset's, paged, within bounds
    mine, after = [], None
    while True:
        page, after = await store.dataset_attempts(dataset_id, after=after, limit=2)
        mine += page
        if after is None:
            break
    assert len(mine) == 9 and len({a.instance_id for a in mine}) == 9 and all(a.dataset_id == dataset_id for a in mine)
    ends = sorted(a.end for a in mine)  # type: ignore[type-var]
    day = ends[0][:10]  # type: ignore[index]
    assert len((await store.dataset_attempts(dataset_id, since=day, until=day + "T99"))[0]) == 9
    assert (await store.dataset_attempts(dataset_id, until=day))[0] == []
    window, _ = await store.dataset_attempts(dataset_id, since=ends[2], until=ends[5])
    assert [a.end for a in window] == ends[2:5]
    assert (await store.dataset_attempts("no-such-dataset"))[0] == []
    # a dataset's newest, by status
    recent = await store.recent_attempts(dataset_id, status="complete", limit=4)
    assert len(recent) == 4 and all(a.status == "complete" for a in recent)
    assert [a.end for a in recent] == sorted((a.end for a in recent), reverse=True)  # type: ignore[type-var]
    assert len(await store.recent_attempts(dataset_id, limit=100)) == 9
    assert await store.recent_attempts("no-such-dataset") == []
    # counts since
    assert await store.count_attempts_ended(dataset_id, "2000-01-01", status="complete") == 6
    assert await store.count_attempts_ended(dataset_id, "2000-01-01") == 9
    assert await store.count_attempts_ended(dataset_id, "9999-01-01") == 0
    # the last attempt of each task: the complete one, also for tasks that failed once
    last = await store.last_attempts(ids + ["missing"])
    assert set(last) == set(ids) and all(a.status == "complete" and a.host == "good" for a in last.values())
    assert {a.attempt for a in last.values()} == {1, 2}


