"""Per-attempt work directory: ``<base>/<dataset>_<job>_<task>_<attempt>/``.

Modules run with this directory as their cwd; the attempt's logs ``stdout``,
``stderr`` and ``stdlog`` sit in it too, so one directory holds everything
needed to debug the attempt (and its disk use counts against the task).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from common.plan.records import TaskPlan

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
LOG_NAMES = ("stdout", "stderr", "stdlog")


@dataclass(frozen=True)
class WorkDir:
    root: Path
    attempt: int

    @property
    def stdout(self) -> Path:
        return self.root / "stdout"

    @property
    def stderr(self) -> Path:
        return self.root / "stderr"

    @property
    def stdlog(self) -> Path:
        return self.root / "stdlog"

    def path(self, local: str) -> Path:
        """Where a data entry's ``local`` name lives; refuses names that escape the dir."""
        candidate = (self.root / local).resolve()
        if candidate != self.root.resolve() and self.root.resolve() not in candidate.parents:
            raise ValueError(f"local file name {local!r} points outside the work dir")
        if candidate.name in LOG_NAMES and candidate.parent == self.root.resolve():
            raise ValueError(f"local file name {local!r} would overwrite the attempt's log")
        return candidate


def dir_name(plan: TaskPlan, attempt: int) -> str:
    task = _UNSAFE.sub("_", plan.task_name or str(plan.task_index)) or str(plan.task_index)
    return f"{plan.dataset}_{plan.job}_{task}_{attempt}"


def create_workdir(base: Path, plan: TaskPlan, attempt: int | None = None) -> WorkDir:
    """Create the attempt's directory.

    With ``attempt`` None (standalone ``frazil run``) the first unused attempt
    number is taken, so a rerun never mixes its files with an earlier one. A
    given ``attempt`` (the pilot's, from the server) must not exist yet.
    """
    base = Path(base).absolute()  # modules, logs and reports must not depend on the cwd
    base.mkdir(parents=True, exist_ok=True)
    if attempt is not None:
        root = base / dir_name(plan, attempt)
        try:
            root.mkdir()
        except FileExistsError:
            raise ValueError(f"work dir {root} already exists (attempt {attempt} ran here "
                             "before)") from None
        return WorkDir(root=root, attempt=attempt)
    number = 0
    while True:
        root = base / dir_name(plan, number)
        try:
            root.mkdir()
            return WorkDir(root=root, attempt=number)
        except FileExistsError:
            number += 1
