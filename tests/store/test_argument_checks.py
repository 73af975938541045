"""Contract: both backends refuse the same bad arguments with the same
InvalidArgumentError message (the checks live once, in server/store/checks.py),
and a refused call writes nothing."""
from __future__ import annotations

import math
from typing import Any, Awaitable, Callable

from server.store import ClaimRequest, InvalidArgumentError, NewJob, NewLog, NewTask, Store, TaskFilter

from .helpers import chain_jobs, new_dataset, pilot

Case = tuple[str, Callable[[Store, dict[str, str]], Awaitable[Any]], str]

CASES: list[Case] = [
    # accounts
    ("user priority above 1", lambda s, ids: s.create_user("bob", 1.5),
     "priority must be a number between 0 and 1"),
    ("bool group priority", lambda s, ids: s.create_group("g", True), "priority must be a number between 0 and 1"),
    ("infinite core-hours", lambda s, ids: s.add_usage("bob", "g", math.inf),
     "core_hours must be a finite number >= 0"),
    ("zero loop lease", lambda s, ids: s.acquire_lease("loop", "me", 0), "seconds must be a positive number"),
    # pilots
    ("unknown pilot state", lambda s, ids: s.set_pilot_state("p", "zombie"), "pilot state must be one of"),
    ("unknown pilot state filter", lambda s, ids: s.list_pilots(state="zombie"), "pilot state must be one of"),
    # datasets and configs
    ("config not an object", lambda s, ids: s.add_config_version(ids["ds"], [1], "a"),  # type: ignore[arg-type]
     "a dataset config must be an object, got list"),
    ("jobs_submitted not a number", lambda s, ids: s.set_jobs_submitted(ids["ds"], "5"),  # type: ignore[arg-type]
     "jobs_submitted must be a whole number >= 0"),
    ("jobs_submitted lowered", lambda s, ids: s.set_jobs_submitted(ids["ds"], 0),
     "can only increase (is 1, asked 0)"),
    ("jobs_submitted of an immutable dataset", lambda s, ids: s.set_jobs_submitted(ids["frozen"], 5),
     "has jobs_immutable set"),
    ("truncate a complete dataset", lambda s, ids: s.truncate_dataset(ids["done"]),
     "is complete; it cannot be truncated"),
    # jobs and tasks
    ("job index twice", lambda s, ids: s.create_jobs(ids["ds"], [NewJob(7, []), NewJob(7, [])]), "appears twice"),
    ("task id twice", lambda s, ids: s.create_jobs(ids["ds"], [NewJob(8, [NewTask("a", 0, task_id="x")]),
                                                               NewJob(9, [NewTask("a", 0, task_id="x")])]),
     "a task_id appears twice in one create"),
    ("task created processing",
     lambda s, ids: s.create_jobs(ids["ds"], [NewJob(10, [NewTask("a", 0, status="processing")])]),
     "cannot be created as 'processing'"),
    ("unknown job status", lambda s, ids: s.create_jobs(ids["ds"], [NewJob(11, [], status="bogus")]),
     "unknown status 'bogus' for job"),
    ("task set processing", lambda s, ids: s.set_task_status(ids["task"], "processing"),
     "a task becomes processing only by a claim"),
    ("bulk status without selection", lambda s, ids: s.bulk_task_status("idle"),
     "bulk task status needs a dataset, task ids or job ids"),
    ("requirements not an object", lambda s, ids: s.update_requirements(ids["ds"], "a", [1]),  # type: ignore[arg-type]
     "requirements must be an object, got list"),
    ("task priority NaN", lambda s, ids: s.set_priorities([(ids["task"], 5.0), (ids["task"], math.nan)]),
     "must be a finite number"),
    ("task stats not an object", lambda s, ids: s.add_task_stat(ids["task"], ids["ds"], []),  # type: ignore[arg-type]
     "task stats must be an object, got list"),
    ("task stats without selection", lambda s, ids: s.list_task_stats(),
     "list_task_stats needs a task_id or a dataset_id"),
    # claim and leases
    ("release limit zero", lambda s, ids: s.release_dependencies(limit=0), "limit must be a whole number > 0"),
    ("queue num zero", lambda s, ids: s.queue_tasks(0), "num must be a whole number > 0"),
    ("queue num text", lambda s, ids: s.queue_tasks("5"), "num must be a whole number > 0"),  # type: ignore[arg-type]
    ("claim free as a dict", lambda s, ids: s.claim(ClaimRequest("p", {"cpu": 1})),  # type: ignore[arg-type]
     "ClaimRequest.free must be common.resources.Resources"),
    ("claim lease zero", lambda s, ids: s.claim(pilot(lease=0)), "lease_seconds must be a positive number"),
    ("renew lease negative", lambda s, ids: s.renew_leases("p", [ids["task"]], -1),
     "lease_seconds must be a positive number"),
    # logs and files
    ("log data bytes", lambda s, ids: s.add_log(NewLog("out", b"x")),  # type: ignore[arg-type]
     "log data must be text, got bytes"),
    ("log chunk number", lambda s, ids: s.append_log(ids["log"], 5),  # type: ignore[arg-type]
     "a log chunk must be text, got int"),
    ("log order", lambda s, ids: s.task_logs(ids["task"], order="up"), "order must be one of asc, desc"),
    ("log num zero", lambda s, ids: s.task_logs(ids["task"], num=0), "num must be a whole number > 0"),
    ("delete logs without selection", lambda s, ids: s.delete_logs(),
     "delete_logs needs a dataset_id or a task_id"),
    ("file movement", lambda s, ids: s.add_file(ids["ds"], "f", "sideways", task_id=ids["task"]),
     "movement must be one of"),
    # actions
    ("action payload list", lambda s, ids: s.add_action("submit", []),  # type: ignore[arg-type]
     "an action payload must be an object, got list"),
    ("action final status", lambda s, ids: s.finish_action(ids["action"], "w", "done"),
     "an action's final status must be one of complete, error, queued"),
    ("action payload key", lambda s, ids: s.finish_action(ids["action"], "w", "complete", payload_update={"a.b": 1}),
     "invalid payload key 'a.b'"),
    ("action progress", lambda s, ids: s.update_action_progress(ids["action"], 101),
     "progress must be a number between 0 and 100"),
]


async def test_bad_arguments_get_the_same_error_on_every_backend(store: Store) -> None:
    ds = await new_dataset(store, jobs=1, tasks_per_job=1)
    jobs = chain_jobs(1, names=("a",), status="waiting", priority=1.0)
    await store.create_jobs(ds.dataset_id, jobs)
    task_id = jobs[0].tasks[0].task_id
    log_id = await store.add_log(NewLog("out", "hello", dataset_id=ds.dataset_id, task_id=task_id))
    action = await store.add_action("submit", {})
    assert (await store.pop_action("w")) is not None
    frozen = await new_dataset(store, jobs=1, jobs_immutable=True)
    to_complete = await new_dataset(store, jobs=1)
    assert await store.set_dataset_status(to_complete.dataset_id, "complete", force=True)
    done = await store.get_dataset(to_complete.dataset_id)
    assert done is not None and done.status == "complete"
    ids = {"ds": ds.dataset_id, "task": task_id, "log": log_id, "action": action.message_id,
           "frozen": frozen.dataset_id, "done": done.dataset_id}
    wrong: list[str] = []
    for name, call, message in CASES:
        try:
            await call(store, ids)
        except InvalidArgumentError as exc:
            if message not in str(exc):
                wrong.append(f"{name}: {exc}")
        else:
            wrong.append(f"{name}: accepted")
    assert not wrong, "\n".join(wrong)
    # nothing of a refused call was written
    assert [(await store.get_dataset(d.dataset_id)) for d in (ds, frozen, done)] == [ds, frozen, done]
    task = await store.get_task(task_id)
    assert task is not None and task.priority == 1.0 and task.status == "waiting"
    assert (await store.get_job(jobs[0].job_id)) is not None
    assert sum((await store.task_counts_by_status(TaskFilter(dataset_id=ds.dataset_id))).values()) == 1
    assert await store.list_users() == [] and await store.list_groups() == []
    log = await store.get_log(log_id)
    assert log is not None and log.data == "hello"
    message = await store.get_action(action.message_id)
    assert message is not None and message.status == "processing" and message.payload == {}

