"""`make run`'s script: server, local pilots and the example datasets, to the end."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_end_to_end import REPO
from tests.pilot.gridftp_support import free_port

pytestmark = pytest.mark.slow


def test_the_demo_datasets_all_complete(tmp_path: Path) -> None:
    data = tmp_path / "frazil-data"
    done = subprocess.run([sys.executable, str(REPO / "examples" / "run_demo.py"), "--no-serve",
                           "--data-dir", str(data), "--port", str(free_port()), "--timeout", "240"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for name in ("local-demo.json: complete", "nugen-local.json: complete", "retry-demo.json: complete",
                 "osdf-demo.json: complete"):
        assert name in out
    assert out.count("complete after 1 non-physics failure(s)") == 2
    assert "26/26 tasks complete" in out and "Token:    ey" in out and "Website:  http://127.0.0.1:" in out
    # the tutorial-style outputs, with the per-iteration interaction from the steering block
    first = json.loads((data / "demo" / "output" / "2" / "0000000-0000999" / "NuGen_3_1.json").read_text())
    assert first["interaction"] == "GlashowResonance" and first["events"] == 600
    # osdf:/// outputs went through the local federation and were read back by the second task
    summary = json.loads((data / "osdf/icecube/wipac/data/sim/frazil-demo/4/summary_2.json").read_text())
    assert summary["events"] == 500
    assert not list((data / "pilots").glob("*/pilot.token"))  # tokens die with their pilots
    assert "frazil logs 3 0/flaky" in out
    # A second run on the same data dir makes datasets 5-8, and its hints name them.
    again = subprocess.run([sys.executable, str(REPO / "examples" / "run_demo.py"), "--no-serve",
                            "--data-dir", str(data), "--port", str(free_port()), "--timeout", "240"],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "frazil logs 7 0/flaky" in again.stdout and "frazil status 7" in again.stdout
