"""Contract: the claim — fit rules, GPU preference, priority, concurrency."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.store import ClaimRequest, InvalidArgumentError, Store, TaskFilter

from .helpers import free, pilot, queued_dataset


async def _one(store: Store, requirements: dict[str, Any]) -> str:
    _, jobs = await queued_dataset(store, 1, requirements=requirements)
    return jobs[0].tasks[0].task_id


@pytest.mark.parametrize("need, too_small, enough", [
    ({"cpu": 4}, {"cpu": 2}, {"cpu": 4}),
    ({"memory": 6}, {"memory": 5.9}, {"memory": 6}),
    ({"memory": 1.5}, {"memory": 1.4}, {"memory": 1.7}),  # inside a memory bin: filtered within the class
    ({"disk": 20}, {"disk": 10}, {"disk": 25}),
    ({"time": 12}, {"time": 11.5}, {"time": 12}),
    ({"gpu": 2}, {"gpu": 1}, {"gpu": 2}),
])
async def test_resource_fit(store: Store, need: dict[str, Any], too_small: dict[str, Any],
                            enough: dict[str, Any]) -> None:
    task_id = await _one(store, need)
    assert await store.claim(pilot(**{"cpu": 8, "memory": 64, "disk": 100, "time": 48, **too_small})) is None
    claimed = await store.claim(pilot(**{"cpu": 8, "memory": 64, "disk": 100, "time": 48, **enough}))
    assert claimed is not None and claimed.task.task_id == task_id


async def test_os_and_site(store: Store) -> None:
    el9 = await _one(store, {"os": ["el9"]})
    assert await store.claim(pilot(os=["el7"])) is None
    assert (await store.claim(pilot(os=["el8", "el9"]))).task.task_id == el9  # type: ignore[union-attr]
    at_a = await _one(store, {"site": "A"})
    assert await store.claim(pilot(site="B")) is None
    assert await store.claim(pilot()) is None  # a pilot with no site does not get site-bound work
    assert (await store.claim(pilot(site="A"))).task.task_id == at_a  # type: ignore[union-attr]
    anywhere = await _one(store, {})
    assert (await store.claim(pilot(site="Z", os=["el7"]))).task.task_id == anywhere  # type: ignore[union-attr]


async def test_gpu_tasks_only_to_gpu_pilots_and_gpu_pilots_prefer_them(store: Store) -> None:
    _, cpu_jobs = await queued_dataset(store, 2, priority=0.9)
    _, gpu_jobs = await queued_dataset(store, 2, requirements={"gpu": 1}, priority=0.1)
    gpu_ids = {j.tasks[0].task_id for j in gpu_jobs}
    cpu_ids = {j.tasks[0].task_id for j in cpu_jobs}
    got = await store.claim(pilot(cpu=4, gpu=1))
    assert got and got.task.task_id in gpu_ids  # despite the CPU tasks' higher priority
    got = await store.claim(pilot(cpu=4))
    assert got and got.task.task_id in cpu_ids
    got = await store.claim(pilot(cpu=4))
    assert got and got.task.task_id in cpu_ids
    assert await store.claim(pilot(cpu=4)) is None  # the remaining GPU task never goes to a CPU pilot
    got = await store.claim(pilot(cpu=4, gpu=2))
    assert got and got.task.task_id in gpu_ids
    _, more_cpu = await queued_dataset(store, 1)
    got = await store.claim(pilot(cpu=4, gpu=1))  # no GPU work left: a GPU pilot takes CPU work
    assert got and got.task.task_id == more_cpu[0].tasks[0].task_id


async def test_highest_priority_first_across_classes(store: Store) -> None:
    _, small = await queued_dataset(store, 2, requirements={"memory": 1}, priority=0.2)
    _, big = await queued_dataset(store, 2, requirements={"memory": 8}, priority=0.8)
    await store.set_priorities([(small[1].tasks[0].task_id, 0.95)])
    order = [(await store.claim(pilot(memory=16))).task.task_id for _ in range(4)]  # type: ignore[union-attr]
    assert order == [small[1].tasks[0].task_id, big[0].tasks[0].task_id, big[1].tasks[0].task_id,
                     small[0].tasks[0].task_id]
    assert await store.claim(pilot(memory=16)) is None


async def test_claim_sets_claim_fields_and_attempt(store: Store) -> None:
    task_id = await _one(store, {"memory": 2})
    claimed = await store.claim(pilot("p-9", site="WIPAC", lease=300))
    assert claimed is not None
    task = await store.get_task(task_id)
    assert task and task.status == "processing" and task.instance_id == claimed.instance_id
    assert task.pilot_id == "p-9" and task.site == "WIPAC" and task.attempts == 1 and claimed.attempt == 1
    assert task.lease_expires == pytest.approx(claimed.lease_expires)
    attempts = await store.get_attempts(task_id)
    assert len(attempts) == 1
    a = attempts[0]
    assert (a.attempt, a.instance_id, a.pilot_id, a.site, a.host, a.status, a.end) == (
        1, claimed.instance_id, "p-9", "WIPAC", "node1", "processing", None)
    assert a.resources == {"memory": 2}
    assert sum(c.queued for c in await store.queued_classes()) == 0
    with pytest.raises(InvalidArgumentError):
        await store.claim(pilot(lease=0))


async def test_concurrent_claimers_never_share_a_task(store: Store) -> None:
    ds, jobs = await queued_dataset(store, 200)
    claimed: list[str] = []

    async def claimer(n: int) -> None:
        while True:
            got = await store.claim(pilot(f"pilot-{n}"))
            if got is None:
                return
            claimed.append(got.task.task_id)

    await asyncio.gather(*(claimer(n) for n in range(50)))
    assert len(claimed) == 200 and set(claimed) == {j.tasks[0].task_id for j in jobs}
    assert await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id)) == {"processing": 200}
    assert await store.queued_classes() == []


async def test_queued_classes_carry_their_key_and_smallest_need_and_count_by_dataset(store: Store) -> None:
    first, _ = await queued_dataset(store, 2, requirements={"memory": 1.5, "os": ["RHEL_7_x86_64"]})
    second, _ = await queued_dataset(store, 1, requirements={"memory": 1.7, "os": ["RHEL_7_x86_64"]})
    await queued_dataset(store, 3)
    classes = await store.queued_classes()
    [el7] = [c for c in classes if c.os == ["RHEL_7_x86_64"]]
    assert el7.queued == 3 and el7.class_key
    assert el7.smallest is not None and el7.smallest.memory == 1.5 and el7.memory >= 1.7
    counts = await store.queued_by_dataset([el7.class_key, "no-such-class"])
    assert counts == {el7.class_key: {first.dataset_id: 2, second.dataset_id: 1}}
    assert await store.queued_by_dataset([]) == {}
    assert await store.claim(pilot(os=["RHEL_7_x86_64"], memory=2)) is not None
    assert sum((await store.queued_by_dataset([el7.class_key]))[el7.class_key].values()) == 2


async def test_batchsys_group_tasks_go_only_to_their_groups_pilots(store: Store) -> None:
    from common.batchsys import checked, group_of, pilot_words

    batchsys = checked({"condor": {"+AccountingGroup": '"icecube.prod"'}})
    group = group_of(batchsys)
    grouped = await _one(store, {"batchsys": batchsys})
    grouped_el7 = await _one(store, {"batchsys": batchsys, "os": ["RHEL_7_x86_64"]})
    plain = await _one(store, {})
    # a plain pilot never gets a group's task, whatever its OS
    first = await store.claim(pilot("plain", os=["RHEL_7_x86_64"]))
    assert first is not None and first.task.task_id == plain
    assert await store.claim(pilot("plain", os=["RHEL_7_x86_64"])) is None
    # a pilot of another group gets nothing; the group's pilot gets only its group's, by OS as usual
    other = group_of(checked({"condor": {"+AccountingGroup": '"other"'}}))
    assert await store.claim(pilot("x", os=pilot_words(other, ["RHEL_7_x86_64"]))) is None
    got = await store.claim(ClaimRequest("g", free(), os=pilot_words(group, ["DEBIAN_12_x86_64"]), group=group))
    assert got is not None and got.task.task_id == grouped
    assert await store.claim(ClaimRequest("g", free(), os=pilot_words(group, ["DEBIAN_12_x86_64"]),
                                          group=group)) is None
    got = await store.claim(ClaimRequest("g", free(), os=pilot_words(group, ["RHEL_7_x86_64"]), group=group))
    assert got is not None and got.task.task_id == grouped_el7
    assert await store.queued_classes() == []


async def test_a_group_pilot_takes_no_plain_task(store: Store) -> None:
    from common.batchsys import checked, group_of, pilot_words

    group = group_of(checked({"condor": {"+AccountingGroup": '"icecube.prod"'}}))
    await _one(store, {})
    await _one(store, {"os": ["RHEL_7_x86_64"]})
    assert await store.claim(ClaimRequest("g", free(), os=pilot_words(group, ["RHEL_7_x86_64"]), group=group)) is None
    keys = [c.class_key for c in await store.queued_classes()]
    assert await store.class_batchsys(keys) == {key: {} for key in keys}


async def test_class_batchsys_names_a_groups_overrides(store: Store) -> None:
    from common.batchsys import checked

    batchsys = checked({"condor": {"+AccountingGroup": '"icecube.prod"'}})
    await _one(store, {"batchsys": batchsys})
    [cls] = await store.queued_classes()
    assert cls.os == [cls.os[0]] and cls.os[0].startswith("batchsys-")
    assert await store.class_batchsys([cls.class_key, "nothing"]) == {cls.class_key: batchsys}
