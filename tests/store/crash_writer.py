"""A store writer that runs until it is killed (the crash-consistency test
SIGKILLs it mid-write). Usage: python -m tests.store.crash_writer URL bulk|claim DATASET_ID

``bulk``: creates jobs of 3 tasks in batches for ever.
``claim``: 16 concurrent pilots claim queued tasks and complete, reset or
fail them; tasks that went back to waiting are queued again.
Prints one line per committed step so the test knows writing is under way.
"""
from __future__ import annotations

import asyncio
import itertools
import random
import sys

from common.resources import Resources
from server.store import AttemptResult, ClaimRequest, NewJob, NewTask, Store, open_store

BATCH = 200


def jobs_from(first: int, n: int) -> list[NewJob]:
    jobs = []
    for j in range(first, first + n):
        gen = NewTask("gen", 0, {"memory": 1 + j % 4})
        sim = NewTask("sim", 1, {"memory": 2, "gpu": j % 2}, depends=[gen.task_id])
        filt = NewTask("filt", 2, {}, depends=[sim.task_id])
        jobs.append(NewJob(j, [gen, sim, filt]))
    return jobs


async def bulk(store: Store, dataset_id: str) -> None:
    for batch in itertools.count():
        await store.create_jobs(dataset_id, jobs_from(batch * BATCH, BATCH))
        print(f"batch {batch}", flush=True)


async def pilot_loop(store: Store, n: int, rng: random.Random) -> None:
    free = Resources(cpu=4, gpu=n % 2, memory=8, disk=10, time=10)
    while True:
        got = await store.claim(ClaimRequest(f"pilot-{n}", free, lease_seconds=3600))
        if got is None:
            await store.queue_tasks(200)
            continue
        roll = rng.random()
        if roll < 0.6:
            await store.complete(got.task.task_id, got.instance_id, AttemptResult(time_used=60))
        elif roll < 0.9:
            await store.reset(got.task.task_id, got.instance_id, AttemptResult(kind="memory",
                                                                               resources={"memory": 1}))
        elif roll < 0.95:
            await store.fail(got.task.task_id, got.instance_id, AttemptResult())
        # else: keep it processing (a pilot that will never report)
        print(f"claim {n}", flush=True)


async def claim(store: Store, dataset_id: str) -> None:
    await store.create_jobs(dataset_id, jobs_from(0, 300))
    await store.bulk_task_status("queued", dataset_id=dataset_id, force=True)
    rng = random.Random(7)
    await asyncio.gather(*(pilot_loop(store, n, rng) for n in range(16)))


async def main(url: str, mode: str, dataset_id: str) -> None:
    store = await open_store(url)
    print("open", flush=True)
    await (bulk if mode == "bulk" else claim)(store, dataset_id)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
