"""End to end against a real Slurm (slurmctld + slurmd on loopback, started by
the ``slurm`` fixture): ``frazil server --provider slurm`` with no pilots of
its own gets datasets done by pilots that Slurm started, and survives what
Slurm does to pilots (scancel, time limits, jobs that cannot start).
"""
from __future__ import annotations

import html
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from tests.e2e.test_end_to_end import Frazil
from tests.provisioning.slurm_cluster import SlurmCluster, slurm  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

TASK = Path(__file__).resolve().parent / "slurm_task.py"
PILOT = f"{sys.executable} -m server.cli pilot --max-backoff 1 --heartbeat 2 --idle-timeout 20 " \
        "--lifetime-margin 15 --term-grace 2"


@pytest.fixture
def server(tmp_path: Path, slurm: SlurmCluster) -> Iterator[Callable[..., Frazil]]:  # noqa: F811
    started: list[Frazil] = []
    slurm.cancel_all()

    def start(args: list[str] | None = None, **settings: str) -> Frazil:
        settings = {"pilot_command": PILOT, "heartbeat_seconds": "2", "provider_interval_seconds": "0.5",
                    **settings}
        frazil = Frazil(tmp_path / f"data{len(started)}", provider="slurm", **settings)
        frazil.env.update(slurm.env)
        frazil.args = args or []
        started.append(frazil)
        frazil.start()
        return frazil

    yield start
    for frazil in started:
        frazil.stop()
    slurm.cancel_all()  # no pilot outlives its test


def dataset(frazil: Frazil, tmp_path: Path, jobs: int, time_hours: float = 0.01, **args: Any) -> str:
    config = {"version": 3.2, "description": "slurm end to end",
              "tasks": [{"name": "work", "requirements": {"memory": 0.1, "time": time_hours},
                         "trays": [{"modules": [{"name": "work", "src": str(TASK),
                                                 "args": {"job": "$(job)", **args}}]}]}]}
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(config))
    return frazil.cli("submit", str(path), "--jobs", str(jobs)).split("(")[1].split(")")[0]


def wait_for(what: Callable[[], Any], seconds: float, message: Callable[[], str]) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, message()
        time.sleep(0.5)


def tail(frazil: Frazil) -> str:
    return (frazil.data_dir / "server.log").read_text(errors="replace")[-4000:]


def tasks(frazil: Frazil, dataset_id: str) -> dict[str, Any]:
    return frazil.get(f"/datasets/{dataset_id}/tasks", keys="task_id|job_index|status|pilot_id|failures_nonphysics|failures_infra")


def running(frazil: Frazil, dataset_id: str) -> list[dict[str, Any]]:
    """The dataset's tasks that a pilot is running ([] until one is)."""
    return [t for t in tasks(frazil, dataset_id).values() if t["status"] == "processing" and t["pilot_id"]]


def test_twenty_jobs_done_by_slurm_pilots_and_idle_surplus_cancelled(tmp_path: Path, server, slurm) -> None:  # noqa: F811
    frazil = server(site_ramp_up="8")
    dataset_id = dataset(frazil, tmp_path, 20, seconds=2)

    def counts() -> dict[str, int]:
        return frazil.get(f"/datasets/{dataset_id}/task_counts/status")
    wait_for(lambda: counts().get("complete") == 20, 150, lambda: f"{counts()}\n{tail(frazil)}")
    pilots = list(frazil.get("/pilots").values())
    assert pilots and {p["provider"] for p in pilots} == {"slurm"}
    assert all(p["provider_job_id"] for p in pilots)
    # slots sized from the allocation (SLURM_CPUS_ON_NODE, SLURM_MEM_PER_NODE): --cpus-per-task=1 and
    # --mem=500 for the 0.1 GB tasks' resource class (memory bins of 0.5 GB), not the host's 2 cores
    assert {(p["resources"]["cpu"], p["resources"]["memory"]) for p in pilots} == {(1, 0.5)}
    providers = frazil.get("/providers")
    slurm_counts = providers["providers"]["slurm"]
    assert providers["configured"] == "slurm" and providers["last_error"] == ""
    assert 1 <= slurm_counts["submitted"] <= 20  # never more pilots than tasks
    # once the queue is empty, no pilot is left waiting in Slurm's queue
    wait_for(lambda: frazil.get("/providers")["providers"]["slurm"]["idle"] == 0, 30, lambda: tail(frazil))
    assert "PENDING" not in slurm.run("squeue", "-h", "-o", "%T")
    ended = frazil.get("/providers")["providers"]["slurm"]
    # 8 pilots fit the node; the ramp-up of 8 per round submitted more while the first ran: those
    # waited in Slurm's queue until the queue emptied, and were cancelled there, never started
    assert slurm_counts["submitted"] > 8, slurm_counts
    assert ended["ended"].get("cancelled", 0) >= slurm_counts["submitted"] - len(pilots), ended
    assert ended["failed_to_start"] == 0


def test_scancel_of_a_busy_pilot_gives_its_task_back_as_an_infrastructure_failure(
        tmp_path: Path, server, slurm) -> None:  # noqa: F811
    frazil = server(lease_seconds="8")
    dataset_id = dataset(frazil, tmp_path, 1, first_hangs="1")
    [task] = wait_for(lambda: running(frazil, dataset_id), 90, lambda: tail(frazil))
    time.sleep(2)  # the module has started
    pilot = frazil.get(f"/pilots/{task['pilot_id']}")
    # SIGKILL to the whole job, batch shell included: the pilot cannot report anything
    slurm.run("scancel", "--signal=KILL", "--full", pilot["provider_job_id"])
    done = wait_for(lambda: tasks(frazil, dataset_id)[task["task_id"]]["status"] == "complete", 120,
                    lambda: f"{tasks(frazil, dataset_id)}\n{tail(frazil)}")
    assert done
    attempts = frazil.get(f"/datasets/{dataset_id}/tasks/{task['task_id']}/attempts")["attempts"]
    assert [a["status"] for a in attempts] == ["reset", "complete"], attempts
    assert attempts[0]["failure_class"] == "infra"
    after = tasks(frazil, dataset_id)[task["task_id"]]
    assert (after["failures_nonphysics"], after["failures_infra"]) == (0, 1)  # the retry budget untouched


def test_a_pilot_at_its_slurm_time_limit_stops_its_tasks_as_evictions(tmp_path: Path, server, slurm) -> None:  # noqa: F811
    # One-minute pilot jobs. The pilot reads its end from Slurm, claims until 5 s before it and stops
    # its tasks (as evictions) term_grace + 5 s before it: with a 20 s grace, a task asking 45 s
    # (claimable in the job's first 10 s) is still running then, and is given back, not killed with the job.
    pilot = PILOT.replace("--lifetime-margin 15 --term-grace 2", "--lifetime-margin 5 --term-grace 20")
    frazil = server(slurm_time_limit="1", pilot_command=pilot)
    dataset_id = dataset(frazil, tmp_path, 1, time_hours=0.0125, first_hangs="1")
    [task] = wait_for(lambda: running(frazil, dataset_id), 90, lambda: tail(frazil))
    wait_for(lambda: tasks(frazil, dataset_id)[task["task_id"]]["status"] == "complete", 150,
             lambda: f"{tasks(frazil, dataset_id)}\n{tail(frazil)}")
    attempts = frazil.get(f"/datasets/{dataset_id}/tasks/{task['task_id']}/attempts")["attempts"]
    assert [a["status"] for a in attempts] == ["reset", "complete"], attempts
    assert attempts[0]["failure_class"] == "infra" and attempts[0]["kind"] == "eviction", attempts[0]
    after = tasks(frazil, dataset_id)[task["task_id"]]
    assert (after["failures_nonphysics"], after["failures_infra"]) == (0, 1)


def test_a_pilot_job_slurm_cannot_start_is_counted_and_shown(tmp_path: Path, server, slurm) -> None:  # noqa: F811
    # a site whose jobs Slurm cannot launch (their output file cannot be created)
    config = tmp_path / "server.toml"
    config.write_text('[pilot_sites.broken]\nsbatch_lines = ["--output=/nonexistent/frazil/%j.out"]\n')
    frazil = server(args=["--config", str(config)])
    dataset(frazil, tmp_path, 2)

    def slurm_counts() -> dict[str, Any]:
        return frazil.get("/providers")["providers"]["slurm"]
    counts = wait_for(lambda: (c := slurm_counts())["failed_to_start"] >= 1 and c, 90, lambda: tail(frazil))
    assert "failed to start" in counts["last_error"] and "JobLaunchFailure" in counts["last_error"], counts
    assert counts["ended"].get("failed", 0) >= 1
    # new pilots pause after a failure: no submit storm
    assert counts["submitted"] <= 4, counts
    page = admin_page(frazil)
    assert "failed to start" in page and "JobLaunchFailure" in page


def admin_page(frazil: Frazil) -> str:
    """The website's admin page, signed in with the admin token as a browser would."""
    session = requests.Session()
    form = session.get(frazil.url + "/login", timeout=30).text
    csrf = html.unescape(re.search(r'name="csrf_token" value="([^"]*)"', form).group(1))
    session.post(frazil.url + "/login", data={"csrf_token": csrf, "token": frazil.admin, "next": "/admin"},
                 timeout=30)
    reply = session.get(frazil.url + "/admin", timeout=30)
    assert reply.ok, reply.text
    return html.unescape(reply.text)
