"""The pilot bundle (`make pilot-bundle`): a zipapp that runs `frazil pilot`
with a bare interpreter (no site-packages), and says clearly what is missing
when its compiled packages do not fit the worker."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from server.provisioning.bundle import main as build

BARE_PYTHON = getattr(sys, "_base_executable", sys.executable)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "frazil-pilot.pyz"
    assert build(["--output", str(out)]) == 0
    return out


def run_bare(bundle: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FRAZIL_"))}
    clean["FRAZIL_BUNDLE_CACHE"] = str(bundle.parent)
    return subprocess.run([BARE_PYTHON, "-S", str(bundle), *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, cwd=bundle.parent, timeout=120)


def test_the_bundle_holds_the_pilot_and_its_dependencies(bundle):
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("bundle.json"))
    assert "__main__.py" in names and "pilot/cli.py" in names and "common/resources.py" in names
    assert not any(n.startswith("server/") for n in names)  # the pilot never needs the server
    assert "psutil" in manifest["compiled"] and "aiohttp" in manifest["fallbacks"]
    assert any(n.startswith(f"_compiled/{manifest['tag']}/psutil/") for n in names)
    assert not any(n.endswith(".so") and not n.startswith("_compiled/") for n in names)
    assert bundle.read_bytes().startswith(b"#!/usr/bin/env python3")


def test_the_bundle_runs_frazil_pilot_without_site_packages(bundle):
    done = run_bare(bundle, "--help")
    assert done.returncode == 0, done.stderr
    assert "--token-file" in done.stdout and "--site" in done.stdout
    # the same checks as `frazil pilot`: a clear error, no traceback
    done = run_bare(bundle, "--server", "http://127.0.0.1:9", "--token-file", "/nonexistent/token")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "/nonexistent/token" in done.stderr


def test_missing_compiled_packages_are_named_in_one_clear_line(bundle):
    done = run_bare(bundle, "--help", env={"FRAZIL_BUNDLE_PURE": "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot start" in done.stderr and "psutil" in done.stderr and "container" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
