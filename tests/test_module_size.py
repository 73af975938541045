"""The developers' rule "short modules with one job": no Python module of the
project (code, tests, benchmarks) grows past MAX_LINES lines."""
from __future__ import annotations

import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parent.parent
MAX_LINES = 500
SKIP_DIRS = {"build", "dist", "node_modules", "__pycache__"}
"""Besides hidden folders (.venv, .git): nothing the project wrote by hand lives there."""


def _project_modules() -> list[pathlib.Path]:
    found = []
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")]
        found += [pathlib.Path(folder) / name for name in files if name.endswith(".py")]
    return found


def test_no_module_over_the_limit() -> None:
    modules = _project_modules()
    assert len(modules) > 100, f"the module walk found only {len(modules)} files under {REPO}"
    too_long = {str(p.relative_to(REPO)): n for p in modules
                if (n := len(p.read_text(errors="replace").splitlines())) > MAX_LINES}
    assert not too_long, f"split these by concern (limit {MAX_LINES} lines): {too_long}"
