"""End to end: `frazil server` with the local provider starts real pilots that
run a 50-job dataset (issue 6's acceptance test).

Each job: ``gen`` writes two job_temp files to the server's scratch store;
``use`` (depends on gen) reads both; ``gpu`` needs a GPU that no local pilot
has, so it stays queued while the rest runs. Job 7's ``use`` runs out of
memory once (escalated, retried, complete); job 13's ``use`` fails like
broken physics code (failed at once). A second, smaller run sends job_temp
through a real globus-gridftp-server (the server's ``scratch_url``).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest
import requests

from tests.pilot.gridftp_support import GridFtpServer, free_port, gridftp_installed, public_dir  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
needs_gridftp = pytest.mark.usefixtures("gridftp_installed")

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
JOBS = 50
DEADLINE_SECONDS = 150


@pytest.fixture
def gridftp() -> Iterator[GridFtpServer]:
    base = public_dir("frazil-e2e-gridftp-")
    server = GridFtpServer(base / "data")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


class Frazil:
    """A `frazil server` subprocess and the CLI/REST calls made against it."""

    def __init__(self, data_dir: Path, provider: str = "local", **settings: str) -> None:
        self.data_dir = data_dir
        self.provider = provider
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}
        self.env.update({
            "FRAZIL_DATA_DIR": str(data_dir), "FRAZIL_DB": f"sqlite:///{data_dir}/frazil.db",
            "FRAZIL_LOOP_INTERVAL_SECONDS": "0.3", "FRAZIL_PROVIDER_INTERVAL_SECONDS": "0.5",
            "FRAZIL_RETRY_DELAY_SECONDS": "0",  # retries at once; tests/server/test_claim_wait_and_pacing.py shows the pacing
            "FRAZIL_PILOT_COMMAND": f"{sys.executable} -m server.cli pilot --max-backoff 1 --heartbeat 2",
            "PYTHONPATH": str(REPO),
        })
        self.env.update({f"FRAZIL_{name.upper()}": value for name, value in settings.items()})
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin = ""
        self.args: list[str] = []
        """More `frazil server` flags (e.g. --config)."""

    def cli(self, *words: str) -> str:
        env = {**self.env, "FRAZIL_URL": self.url, "FRAZIL_TOKEN": self.admin}
        done = subprocess.run([sys.executable, "-m", "server.cli", *words], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"frazil {' '.join(words)}: {done.stderr}"
        return done.stdout

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "server", "--port", str(self.port),
                                      "--provider", self.provider, "--local-slots", "cpus=4,memory=4GB",
                                      *self.args],
                                     cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not start:\n" + (self.data_dir / "server.log").read_text())
        self.admin = self.cli("token", "create", "--user", "operator", "--role", "admin").strip()

    def get(self, path: str, **params: Any) -> Any:
        reply = requests.get(self.url + path, params=params, timeout=30,
                             headers={"Authorization": f"Bearer {self.admin}"})
        assert reply.ok, f"GET {path}: {reply.status_code} {reply.text}"
        return reply.json()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


def pilot_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd") or ""
        if cwd.startswith(str(data_dir / "pilots")):
            found.append(proc)
    return found


def dataset_config(markers: Path, outputs: Path, *, gpu: bool = True) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = [
        {"name": "gen", "requirements": {"memory": 0.2, "time": 0.05},
         "data": [{"type": "job_temp", "movement": "output", "local": "gen.txt"},
                  {"type": "job_temp", "movement": "output", "local": "gen2.txt"}],
         "trays": [{"modules": [{"name": "gen", "src": str(HERE / "e2e_gen.py"),
                                 "args": {"job": "$(job)", "out": "gen.txt", "out2": "gen2.txt"}}]}]},
        {"name": "use", "depends": ["gen"], "requirements": {"memory": 0.2, "time": 0.05},
         "data": [{"type": "job_temp", "movement": "input", "local": "gen.txt"},
                  {"type": "job_temp", "movement": "input", "local": "gen2.txt"},
                  {"type": "permanent", "movement": "output", "local": "result.txt",
                   "remote": "$steering(outputs)/$(job)/result.txt"}],
         "trays": [{"modules": [{"name": "use", "src": str(HERE / "e2e_use.py"),
                                 "args": {"job": "$(job)", "markers": str(markers), "out": "result.txt"}}]}]},
    ]
    if gpu:
        tasks.append({"name": "gpu", "requirements": {"gpu": 1, "memory": 0.2, "time": 0.05},
                      "trays": [{"modules": [{"name": "gpu", "src": str(HERE / "e2e_gen.py"),
                                              "args": {"job": "$(job)", "out": "a.txt", "out2": "b.txt"}}]}]})
    return {"version": 3.2, "description": "end-to-end: job_temp hand-off, a GPU task, failures",
            "steering": {"parameters": {"outputs": str(outputs)}}, "tasks": tasks}


def run_dataset(frazil: Frazil, config: dict[str, Any], jobs: int, tmp_path: Path) -> tuple[str, dict]:
    """Submit with the CLI, wait until every gen and use task ended."""
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(config))
    out = frazil.cli("submit", str(path), "--jobs", str(jobs))
    dataset_id = out.split("(")[1].split(")")[0]
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        counts = frazil.get(f"/datasets/{dataset_id}/task_counts/name_status")
        gen, use = counts.get("gen", {}), counts.get("use", {})
        gen_done = gen.get("complete", 0) + gen.get("failed", 0) == jobs
        use_blocked = use.get("idle", 0) == gen.get("failed", 0)  # a failed gen never releases its use
        if gen_done and use_blocked and use.get("complete", 0) + use.get("failed", 0) + use.get("idle", 0) == jobs:
            return dataset_id, counts
        assert time.monotonic() < deadline, f"not finished in time: {counts}\n" + \
            (frazil.data_dir / "server.log").read_text()[-3000:]
        time.sleep(1)


def test_fifty_jobs_with_real_pilots(tmp_path: Path) -> None:
    markers, outputs = tmp_path / "markers", tmp_path / "outputs"
    markers.mkdir()
    frazil = Frazil(tmp_path / "data", local_file_roots=str(outputs))  # the permanent outputs go there
    frazil.start()
    try:
        dataset_id, counts = run_dataset(frazil, dataset_config(markers, outputs), JOBS, tmp_path)
        check_results(frazil, dataset_id, counts, outputs)
    finally:
        frazil.stop()
    assert pilot_processes(frazil.data_dir) == []  # the server stopped its pilots


@needs_gridftp
def test_job_temp_over_a_real_gridftp_server(tmp_path: Path, gridftp: GridFtpServer) -> None:
    markers, outputs = tmp_path / "markers", tmp_path / "outputs"
    markers.mkdir()
    frazil = Frazil(tmp_path / "data", scratch_url=gridftp.url, local_file_roots=str(outputs))
    frazil.start()
    try:
        dataset_id, counts = run_dataset(frazil, dataset_config(markers, outputs, gpu=False), 5, tmp_path)
        assert frazil.get(f"/datasets/{dataset_id}")["dataset"] == 1
        tasks = frazil.get(f"/datasets/{dataset_id}/tasks", keys="task_id|name")
        gen_id = next(t["task_id"] for t in tasks.values() if t["name"] == "gen")
        attempt = frazil.get(f"/datasets/{dataset_id}/tasks/{gen_id}/attempts")["attempts"][-1]
    finally:
        frazil.stop()
    assert counts == {"gen": {"complete": 5}, "use": {"complete": 5}}, counts
    urls = json.dumps(attempt["outputs"])
    assert urls.count(gridftp.url) == 2, urls  # both job_temp files went to the GridFTP server
    for job in range(5):
        assert (outputs / str(job) / "result.txt").read_text().startswith(f"job {job}: ")


def check_results(frazil: Frazil, dataset_id: str, counts: dict[str, dict[str, int]], outputs: Path) -> None:
    assert counts["gen"] == {"complete": JOBS}
    assert counts["use"] == {"complete": JOBS - 1, "failed": 1}
    # the GPU tasks wait for a GPU pilot that never comes; nothing else waited for them
    assert counts["gpu"] == {"queued": JOBS}
    pilots = frazil.get("/pilots")
    pilot_docs = list(pilots.values()) if isinstance(pilots, dict) else pilots
    assert pilot_docs and all(p["resources"]["gpu"] == 0 for p in pilot_docs)
    assert {p["provider"] for p in pilot_docs} == {"local"} and all(p["provider_job_id"] for p in pilot_docs)
    providers = frazil.get("/providers")
    assert providers["configured"] == "local" and providers["providers"]["local"]["submitted"] >= 2

    tasks = frazil.get(f"/datasets/{dataset_id}/tasks", keys="task_id|job_index|name|status|requirements")
    by_key = {(t["job_index"], t["name"]): t for t in tasks.values()}
    # every job's use task read both job_temp files of its gen task (it checks their content)
    for job in range(JOBS):
        if job != 13:
            assert (outputs / str(job) / "result.txt").read_text().startswith(f"job {job}: ")
    # resource escalation: job 7's first attempt ran out of memory, the retry got more
    escalated = by_key[(7, "use")]
    assert escalated["status"] == "complete" and escalated["requirements"]["memory"] > 0.2
    attempts = frazil.get(f"/datasets/{dataset_id}/tasks/{escalated['task_id']}/attempts")["attempts"]
    assert [a["status"] for a in attempts] == ["reset", "complete"]
    assert attempts[0]["kind"] == "memory" and "memory" in attempts[0]["requirement_changes"]
    assert attempts[1]["resources"]["memory"] > 0.2
    # physics failure: failed at once, the reason and the log kept
    broken = by_key[(13, "use")]
    assert broken["status"] == "failed"
    attempts = frazil.get(f"/datasets/{dataset_id}/tasks/{broken['task_id']}/attempts")["attempts"]
    assert len(attempts) == 1 and attempts[0]["failure_class"] == "physics"
    logs = frazil.get(f"/datasets/{dataset_id}/tasks/{broken['task_id']}/logs")
    assert "negative energy in event 42" in json.dumps(logs)
    # provenance of an output: which dataset, job, task and attempt made it, with its checksum
    url = f"{outputs}/3/result.txt"
    found = frazil.get("/provenance", url=url)["results"]
    assert found and found[0]["dataset_id"] == dataset_id
    record = json.dumps(found[0])
    assert by_key[(3, "use")]["task_id"] in record and "sha512" in record
    # the user's view: frazil status names the counts by task
    status = frazil.cli("status", dataset_id)
    assert "use" in status and "gpu" in status
