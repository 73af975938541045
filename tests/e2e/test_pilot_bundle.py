"""The pilot bundle end to end: `make pilot-bundle`'s zipapp, run by a bare
interpreter (no site-packages, as on a grid worker without frazil), registers
with a real server, runs a dataset's tasks and says at registration that it
is a bundle."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.provisioning.bundle import main as build_bundle
from tests.e2e.test_end_to_end import Frazil, dataset_config, run_dataset

pytestmark = pytest.mark.slow
BARE_PYTHON = getattr(sys, "_base_executable", sys.executable)


def test_a_bundled_pilot_runs_tasks(tmp_path: Path) -> None:
    bundle = tmp_path / "frazil-pilot.pyz"
    assert build_bundle(["--output", str(bundle)]) == 0
    markers, outputs = tmp_path / "markers", tmp_path / "outputs"
    markers.mkdir()
    frazil = Frazil(tmp_path / "data", provider="none", grid_file_roots=str(outputs))  # a GRID pilot
    frazil.start()
    pilot = None
    try:
        token_file = tmp_path / "pilot.token"
        token_file.write_text(frazil.cli("token", "create", "--user", "grid-pilot", "--role", "pilot"))
        token_file.chmod(0o600)
        workdir = tmp_path / "worker"
        workdir.mkdir()
        env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "FRAZIL_BUNDLE_CACHE": str(workdir),
               "FRAZIL_PROVIDER": "htcondor", "FRAZIL_PROVIDER_JOB_ID": "1234.0"}
        pilot = subprocess.Popen([BARE_PYTHON, "-S", str(bundle), "--server", frazil.url, "--token-file",
                                  str(token_file), "--cpus", "2", "--memory", "2", "--disk", "5", "--time", "2",
                                  "--site", "GRID", "--idle-timeout", "30", "--max-backoff", "1"],
                                 cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                 stderr=open(tmp_path / "pilot.log", "wb"))
        dataset_id, counts = run_dataset(frazil, dataset_config(markers, outputs, gpu=False), 3, tmp_path)
        assert counts == {"gen": {"complete": 3}, "use": {"complete": 3}}, (tmp_path / "pilot.log").read_text()
        pilots = frazil.get("/pilots")
        docs = list(pilots.values()) if isinstance(pilots, dict) else pilots
        [doc] = docs
        assert "+bundle." in doc["version"] and doc["site"] == "GRID"
        assert (doc["provider"], doc["provider_job_id"]) == ("htcondor", "1234.0")
    finally:
        if pilot is not None:
            pilot.terminate()
            pilot.wait(timeout=30)
        frazil.stop()
    for job in range(3):
        assert (outputs / str(job) / "result.txt").read_text().startswith(f"job {job}: ")
