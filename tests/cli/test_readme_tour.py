"""The README's tour, run as written: ``frazil submit examples/local-demo.json --jobs 20 --wait``
from the repository root, against a real server with a fresh data dir and real pilots.

The config names its module scripts by relative path (``generate.py``,
``combine.py`` beside it). ``frazil submit`` carries them with the submission,
the pilots stage them into each task's work dir, and every task completes;
``frazil run --task`` stages them the same way for a reader of the dataset.
A config whose relative script is missing is refused at submit, naming it.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.pilot.pilot_support import REPO, Deployment, deploy, tasks_of

pytestmark = pytest.mark.slow


def _tour_command() -> list[str]:
    """The submit line of the README's tour, word for word."""
    readme = (REPO / "README.md").read_text()
    [line] = [ln for ln in readme.splitlines() if re.match(r"^\S*frazil submit examples/local-demo\.json", ln)]
    words = shlex.split(line.split("#")[0])
    # the README's .venv/bin/frazil, or this interpreter's frazil where the venv lives elsewhere
    program = REPO / words[0]
    return ([str(program)] if program.exists() else [sys.executable, "-m", "server.cli"]) + words[1:]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = deploy(tmp_path)
    yield d
    d.stop_all()


def _frazil(d: Deployment, token: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FRAZIL_URL": d.server.url, "FRAZIL_TOKEN": token}
    env.pop("FRAZIL_TOKEN_FILE", None)
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


async def test_the_readme_tour_submit_works_as_written(deployment: Deployment) -> None:
    d = deployment
    token = d.server.token("demo", role="admin", groups="users")
    d.pilot("p1", "--cpus", "4", "--memory", "4", "--disk", "10", "--idle-timeout", "120")
    command = _tour_command()
    assert command[-5:] == ["submit", "examples/local-demo.json", "--jobs", "20", "--wait"]
    done = _frazil(d, token, command)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{d.log('p1')[-3000:]}"
    assert "carrying combine.py, generate.py" in done.stdout and "complete" in done.stdout.splitlines()[-1]
    dataset_id = re.search(r"\(([0-9a-f]{32})\)", done.stdout).group(1)
    tasks = await tasks_of(d.db, dataset_id)
    assert len(tasks) == 40 and {t["status"] for t in tasks} == {"complete"}
    # ``frazil run --task`` fetches the carried sources too, as a reader of the dataset
    reader = d.server.token("bob", groups="users")
    local = _frazil(d, reader, [sys.executable, "-m", "server.cli", "run", "--task", "3/generate", "--dataset",
                                dataset_id, "--workdir", str(d.tmp / "debug")])
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout.strip().splitlines()[-1])["status"] == "complete"
    assert list((d.tmp / "debug").rglob("generate.py")), "the carried script was not staged"


async def test_a_relative_script_that_is_not_there_is_named_at_submit(deployment: Deployment,
                                                                      tmp_path: Path) -> None:
    d = deployment
    config = json.loads((REPO / "examples" / "local-demo.json").read_text())
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "generate.py").write_text((REPO / "examples" / "generate.py").read_text())
    (tmp_path / "cfg" / "demo.json").write_text(json.dumps(config))
    done = _frazil(d, d.server.token("demo", groups="users"),
                   [sys.executable, "-m", "server.cli", "submit", str(tmp_path / "cfg" / "demo.json"), "--jobs", "1"])
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert ("config['tasks'][1]['trays'][0]['modules'][0]['src']: module source 'combine.py' is neither a file "
            f"beside the config ({tmp_path / 'cfg' / 'combine.py'}) nor staged by a data entry") in done.stderr
    assert "generate.py" not in done.stderr
