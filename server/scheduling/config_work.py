"""The config checks that run in the config pool's worker processes
(server.scheduling.config_pool): plain functions of plain, picklable values."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common import json_input
from common.config import ConfigProblem, prepare_config, upgrade_config
from common.macros import BudgetExceeded, budget
from common.plan import prepare_submission


@dataclass
class CheckedConfig:
    """What a submit or edit_config check found."""

    config: Any = None
    """The filled config to store (None when it could not be read or has problems)."""
    problems: list[ConfigProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Keys dropped converting a 3.0/3.1 config."""
    error: str = ""
    """Not a config problem: the text was no JSON object."""


def check_submitted(text: str, jobs: int, dataset: int = 1, dataset_id: str = "", seconds: float = 10.0,
                    upgrade: bool = True) -> CheckedConfig:
    """A submitted config (IceProd sends it as a JSON string): read, converted
    to 3.2 (``upgrade``: say what was dropped), filled and planned for the
    first and the last job within ``seconds`` of CPU."""
    try:
        config = json_input.loads(text, what="key 'config'")
    except json_input.JsonInputError as exc:
        return CheckedConfig(error=str(exc))
    if not isinstance(config, dict):
        return CheckedConfig(error=f"key 'config' must hold a JSON object, got {type(config).__name__}")
    config.setdefault("version", 3.2)
    warnings = [str(w) for w in upgrade_config(config)[1]] if upgrade else []
    filled, problems = prepare_submission(config, jobs, dataset=dataset, dataset_id=dataset_id, seconds=seconds)
    # a refused config is not sent back: unpickling megabytes would cost the server's process for nothing
    return CheckedConfig(config=None if problems else filled, problems=problems, warnings=warnings)


def check_stored(config: Any, seconds: float = 10.0) -> tuple[Any, list[ConfigProblem]]:
    """``PUT /config``: converted, filled and schema-checked (no planning)."""
    try:
        with budget(seconds, reuse=False):
            return prepare_config(config)
    except BudgetExceeded as exc:
        return config, [ConfigProblem(path="config", message=str(exc))]


def ready() -> bool:
    """A no-op: starts a worker ahead of the first real check."""
    return True
