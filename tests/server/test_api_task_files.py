"""Per-job files (``/datasets/{id}/files``) reach the pilot with the claim, and its plan uses them."""
from __future__ import annotations

from common.plan import JobContext, build_task_plan
from server.auth import default_rights
from server.store import NewDataset, NewJob, NewTask
from tests.server.test_api_pilot_support import claim, register

CONFIG = {
    "version": 3.1,
    "tasks": [{"name": "BasicSubmit", "task_files": True,
               "trays": [{"modules": [{"src": "/bin/echo", "args": "$(input) $(output)"}]}]}],
}


async def test_claim_carries_the_tasks_files(server):
    store = server.store
    dataset = await store.create_dataset(NewDataset(description="files", jobs_submitted=1, tasks_per_job=1,
                                                    group="users", username="alice"))
    await store.set_dataset_rights(dataset.dataset_id, default_rights("alice", "users"))
    version = await store.add_config_version(dataset.dataset_id, CONFIG, "alice")
    job = NewJob(job_index=0, tasks=[NewTask(name="BasicSubmit", task_index=0)])
    await store.create_jobs(dataset.dataset_id, [job], config_version=version)
    user = server.rest(server.token("alice"))
    for url, movement in (("file:///data/a.i3", "input"), ("file:///data/b.i3", "input"), ("file:///out/c.i3", "output")):
        await user.request("POST", f"/datasets/{dataset.dataset_id}/files",
                           {"filename": url, "movement": movement, "job_index": 0, "task_name": "BasicSubmit"})
    listed = (await user.request("GET", f"/datasets/{dataset.dataset_id}/files"))["files"]
    assert [f["transfer"] for f in listed] == [True, True, True]  # IceProd's boolean, not "true"
    await store.release_dependencies(dataset_id=dataset.dataset_id)
    await store.queue_tasks(10, dataset_id=dataset.dataset_id)
    pilot = server.rest(server.token("pilot-1", role="pilot", groups=()))
    task = await claim(pilot, await register(pilot))
    assert [f["remote"] for f in task["files"]] == ["file:///data/a.i3", "file:///data/b.i3", "file:///out/c.i3"]
    plan = build_task_plan(task["config"], task["name"], JobContext(
        dataset=task["dataset"], job=task["job_index"], jobs_submitted=task["jobs_submitted"], task_files=task["files"]))
    assert plan.trays[0].modules[0].argv == ["/bin/echo", "a.i3", "b.i3", "c.i3"]


async def test_tasks_without_task_files_get_an_empty_list(server):
    from tests.server.test_api_pilot_support import make_dataset
    await make_dataset(server.store)
    pilot = server.rest(server.token("pilot-1", role="pilot", groups=()))
    task = await claim(pilot, await register(pilot))
    assert task["files"] == []


def test_file_listing_gives_transfer_as_iceprod_does():
    from server.api.dataset_task_actions import _file_doc
    assert [_file_doc({"transfer": t})["transfer"] for t in ("true", "false", "maybe", "no")] == [
        True, False, "maybe", False]
