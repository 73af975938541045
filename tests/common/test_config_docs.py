"""docs/config.md shows real behaviour: its examples are checked here."""
from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from common.config import check_config, fill_defaults

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "config.md"


def _json_blocks() -> list[Any]:
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)
            if b.lstrip().startswith("{") and not b.lstrip().startswith('{"type"')]


def test_complete_example_has_no_problems() -> None:
    example = _json_blocks()[0]
    assert example["tasks"][0]["name"] == "generation"
    assert check_config(example) == []


def test_documented_defaulted_task_is_what_fill_defaults_gives() -> None:
    documented = _json_blocks()[-1]
    smallest = {"name": "t", "trays": [{"modules": [{"src": "run.py"}]}]}
    assert fill_defaults({"version": 3.2, "tasks": [smallest]})["tasks"][0] == documented
