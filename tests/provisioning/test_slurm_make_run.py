"""`make run RUN_ARGS="--provider slurm"`: the demo's datasets done by pilots
that a real Slurm started (the ``slurm`` fixture's cluster)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pilot.gridftp_support import free_port
from tests.provisioning.slurm_cluster import SlurmCluster, slurm  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_make_run_with_the_slurm_provider(tmp_path: Path, slurm: SlurmCluster) -> None:  # noqa: F811
    slurm.cancel_all()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}, **slurm.env}
    done = subprocess.run([sys.executable, str(REPO / "examples" / "run_demo.py"), "--no-serve", "--provider",
                           "slurm", "--data-dir", str(tmp_path / "frazil-data"), "--port", str(free_port()),
                           "--timeout", "240"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("local-demo.json: complete", "nugen-local.json: complete", "retry-demo.json: complete"):
        assert name in done.stdout
    outputs = list((tmp_path / "frazil-data" / "slurm").glob("*/pilot-*.out"))
    assert outputs and any("registered as pilot" in p.read_text() for p in outputs)  # pilots ran as Slurm jobs
    states = slurm.run("squeue", "-h", "-o", "%T").split()
    assert "PENDING" not in states and "RUNNING" not in states, states  # the demo cancelled its pilots
