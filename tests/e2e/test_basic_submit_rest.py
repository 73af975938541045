"""examples/basic_submit_rest.py — IceProd's basic_submit.py call sequence
with rest_tools — run as a subprocess against a real server whose local
pilots then run the jobs."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_end_to_end import REPO, Frazil

pytestmark = pytest.mark.slow
SCRIPT = REPO / "examples" / "basic_submit_rest.py"


def run_basic_submit(frazil: Frazil, files: Path, *, seconds: float = 90,
                     extra: tuple[str, ...] = ()) -> tuple[str, str]:
    """Run the example over ``files``; (its stdout, the dataset id) once the dataset completed."""
    env = {**frazil.env, "FRAZIL_URL": frazil.url, "FRAZIL_TOKEN": frazil.admin}
    done = subprocess.run([sys.executable, str(SCRIPT), str(REPO / "tests" / "e2e" / "e2e_copy.py"),
                           "$(input) $(output)", str(files), "--description", "basic submit test",
                           "--request_memory", "0.5", "--poll", "0.2", *extra],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    dataset_id = done.stdout.split("(")[1].split(")")[0]
    deadline = time.monotonic() + seconds
    while (status := frazil.get(f"/datasets/{dataset_id}")["status"]) not in ("complete", "errors"):
        assert time.monotonic() < deadline, frazil.get(f"/datasets/{dataset_id}/task_counts/status")
        time.sleep(0.5)
    tasks = frazil.get(f"/datasets/{dataset_id}/tasks", keys="task_id|status")
    reasons = [frazil.get(f"/datasets/{dataset_id}/tasks/{t['task_id']}/attempts")["attempts"][-1]["reason"]
               for t in tasks.values() if t["status"] != "complete"]
    assert status == "complete", reasons
    return done.stdout, dataset_id


def test_iceprod_basic_submit_flow_runs_unchanged_but_for_address_and_token(tmp_path: Path) -> None:
    lines = []
    for i in range(3):
        (tmp_path / f"in{i}.txt").write_text(f"event data {i}\n")
        lines.append(f"file://{tmp_path}/in{i}.txt file://{tmp_path}/out/out{i}.txt")
    files = tmp_path / "files.txt"
    files.write_text("\n".join(lines) + "\n")
    frazil = Frazil(tmp_path / "data", local_file_roots=str(tmp_path / "out"))  # the outputs go there
    frazil.start()
    try:
        # file:// data needs no storage token, but 3.2's rule wants a scope with task_files
        stdout, dataset_id = run_basic_submit(frazil, files, extra=("--scope", "storage.read:/data"))
        assert stdout.startswith("Dataset 1 submitted (")
        dataset = frazil.get(f"/datasets/{dataset_id}")
        assert dataset["jobs_submitted"] == 3 and dataset["description"] == "basic submit test"
    finally:
        frazil.stop()
    for i in range(3):
        assert (tmp_path / "out" / f"out{i}.txt").read_text() == f"EVENT DATA {i}\n"


def test_local_paths_outside_data_are_refused_as_in_iceprod(tmp_path: Path) -> None:
    files = tmp_path / "files.txt"
    files.write_text(f"{tmp_path}/in.txt {tmp_path}/out.txt\n")
    done = subprocess.run([sys.executable, str(SCRIPT), "x.py", "", str(files)], capture_output=True, text=True,
                          env={"FRAZIL_TOKEN": "t", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 2 and "must be under /data" in done.stderr
