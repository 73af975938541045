"""Issue 16 item 3 end to end: a real server and real pilots, one of them on a
host (``--hostname bad-node``) whose every task fails with a CVMFS error while
the other host completes the same dataset's tasks. The quarantine loop
quarantines the bad host, its pilot is refused (reason ``quarantined``) and
drains, a new pilot there gets nothing, the good host finishes the work, and
an admin's lift lets the (repaired) host work again."""
from __future__ import annotations

import datetime
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
from rest_tools.client import RestClient

from server.store.records import TIME_FORMAT
from tests.pilot.pilot_support import Deployment, deploy, tasks_of, wait_for, with_store

WORK = textwrap.dedent("""
    import os, sys, time
    # the broken node: its pilots' work dirs are <tmp>/bad and <tmp>/bad2
    if {"bad", "bad2"} & set(os.getcwd().split(os.sep)):
        print("cvmfs2: failed to initialize root file catalog", file=sys.stderr, flush=True)
        sys.exit(1)
    time.sleep(0.2)
""")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = deploy(tmp_path, FRAZIL_QUARANTINE_CHECK_SECONDS="0.5", FRAZIL_QUARANTINE_HOST_FAILURES="3",
               FRAZIL_MAX_RETRIES="100")
    try:
        yield d
    finally:
        d.stop_all()


def _config(script: Path) -> dict[str, Any]:
    return {"version": 3.2, "tasks": [{"name": "work", "requirements": {"memory": 0.05, "time": 0.01},
                                       "trays": [{"modules": [{"src": str(script)}]}]}]}


def _pilot_args(host: str) -> list[str]:
    return ["--hostname", host, "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "30",
            "--sandbox", "off"]


@pytest.mark.slow
async def test_a_host_that_fails_every_task_is_quarantined_drained_and_lifted(deployment: Deployment,
                                                                              tmp_path: Path) -> None:
    script = tmp_path / "work.py"
    script.write_text(WORK)
    dataset_id = await deployment.submit(_config(script), jobs=12)
    admin = RestClient(deployment.server.url, deployment.server.token("root", role="admin", groups="admin"),
                       retries=0)
    bad = deployment.pilot("bad", *_pilot_args("bad-node"))
    good = deployment.pilot("good", *_pilot_args("good-node"))

    async def quarantined() -> bool:
        return bool((await admin.request("GET", "/quarantines"))["quarantines"])

    await wait_for(quarantined, 90, "the bad host's quarantine", lambda: deployment.log("bad")[-3000:])
    [quarantine] = (await admin.request("GET", "/quarantines"))["quarantines"]
    assert (quarantine["kind"], quarantine["name"]) == ("host", "bad-node")
    assert "host bad-node failed" in quarantine["reason"] and "cvmfs" in quarantine["reason"]
    assert "other hosts completed" in quarantine["reason"]

    # its pilot is refused with the machine-readable reason, drains and leaves
    await wait_for(lambda: _exited(bad), 60, "the bad host's pilot to drain and exit",
                   lambda: deployment.log("bad")[-3000:])
    assert "quarantined" in deployment.log("bad")

    # a new pilot on that host gets nothing and leaves; the good host finishes everything
    again = deployment.pilot("bad2", *_pilot_args("bad-node"))
    await wait_for(lambda: _exited(again), 60, "a new pilot on the quarantined host to leave",
                   lambda: deployment.log("bad2")[-3000:])
    assert "quarantined" in deployment.log("bad2")

    async def all_complete() -> bool:
        rows = await tasks_of(deployment.db, dataset_id)
        return len(rows) == 12 and all(row["status"] == "complete" for row in rows)

    await wait_for(all_complete, 120, "the good host to finish the dataset", lambda: deployment.log("good")[-3000:])
    # the claim path reads the quarantines again at once on this replica (others within 2 s);
    # only claims already in flight when it was recorded may still start there
    created = datetime.datetime.strptime(quarantine["created"], TIME_FORMAT) + datetime.timedelta(seconds=2)
    settled = created.strftime(TIME_FORMAT)

    async def bad_attempts_after() -> list[Any]:
        async def read(store: Any) -> list[Any]:
            rows = await tasks_of(deployment.db, dataset_id)
            return [a for row in rows for a in await store.get_attempts(row["task_id"])
                    if a.host == "bad-node" and a.start > settled]
        return await with_store(deployment.db, read)

    assert await bad_attempts_after() == []  # nothing started on the bad host once it was quarantined

    # the admin lifts it; the repaired host works again
    lifted = await admin.request("DELETE", f"/quarantines/{quarantine['quarantine_id']}")
    assert lifted["lifted"] and lifted["lifted_by"] == "root"
    assert (await admin.request("GET", "/quarantines"))["quarantines"] == []
    deployment.kill_pilot(good)  # the repaired host is the only one left
    more = await deployment.submit(_config(script), jobs=2)
    deployment.pilot("fixed", *_pilot_args("bad-node"))

    async def fixed_done() -> bool:
        rows = await tasks_of(deployment.db, more)
        return len(rows) == 2 and all(row["status"] == "complete" for row in rows)

    await wait_for(fixed_done, 90, "the repaired host to run tasks again", lambda: deployment.log("fixed")[-3000:])
    hosts = await with_store(deployment.db, lambda store: _hosts(store, deployment, more))
    assert hosts == {"bad-node"}


async def _exited(proc: Any) -> bool:
    return proc.poll() is not None


async def _hosts(store: Any, deployment: Deployment, dataset_id: str) -> set[str]:
    rows = await tasks_of(deployment.db, dataset_id)
    return {a.host for row in rows for a in await store.get_attempts(row["task_id"])}
