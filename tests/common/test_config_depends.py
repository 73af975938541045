"""``depends`` entries read by the one function the config checks and
materialization share (common/config/depends.py)."""
from __future__ import annotations

from typing import Any

import pytest

from common.config import check_config
from common.config.depends import Dependency, read_depends, resolve_ref

TASKS: list[Any] = [{"name": "gen"}, {"name": "prop"}, "not a task", {"name": "det"}]
OTHER = "632bbe3ecb8611eea1dd00505684797b"


@pytest.mark.parametrize(("index", "depends", "expected"), [
    (1, ["gen"], [Dependency("gen", 0, task_index=0)]),
    (3, ["prop", "gen"], [Dependency("prop", 0, task_index=1), Dependency("gen", 1, task_index=0)]),
    (1, [7, "gen"], [Dependency("gen", 1, task_index=0)]),  # a non-string is the schema's to report
    (0, ["prop"], [Dependency("prop", 0, task_index=1, problem="depends on a later task 'prop' (task 1); "
                                                              "a task may only depend on tasks listed before it")]),
    (0, ["gen"], [Dependency("gen", 0, task_index=0, problem="depends on a later task 'gen' (task 0); "
                                                             "a task may only depend on tasks listed before it")]),
    (1, ["nope"], [Dependency("nope", 0, problem="depends on unknown task 'nope'")]),
    (1, [f"{OTHER}:gen"], [Dependency(f"{OTHER}:gen", 0, dataset_id=OTHER, ref="gen")]),
    (1, [f"{OTHER}:2"], [Dependency(f"{OTHER}:2", 0, dataset_id=OTHER, ref="2")]),
    (1, [":gen", f"{OTHER}: "], [
        Dependency(":gen", 0, problem="malformed cross-dataset dependency ':gen' "
                                      "(expected '<dataset_id>:<task name or index>')"),
        Dependency(f"{OTHER}: ", 1, problem=f"malformed cross-dataset dependency '{OTHER}: ' "
                                            "(expected '<dataset_id>:<task name or index>')")]),
])
def test_read_depends(index: int, depends: list[Any], expected: list[Dependency]) -> None:
    tasks = [dict(t, depends=depends) if i == index else t for i, t in enumerate(TASKS)]
    assert read_depends(tasks, index) == expected


def test_resolve_ref_by_name_then_index() -> None:
    assert resolve_ref(TASKS, "det") == 3
    assert resolve_ref(TASKS, "1") == 1
    assert resolve_ref(TASKS, "4") is None and resolve_ref(TASKS, "nope") is None
    assert resolve_ref([{"name": "0"}, {"name": "x"}], "0") == 0  # a name wins over an index


def test_checks_report_what_read_depends_finds_at_its_path() -> None:
    task = {"trays": [{"modules": [{"src": "a.py"}]}]}
    config = {"version": 3.2, "tasks": [dict(task, name="a", depends=["b"]), dict(task, name="b", depends=["a"])]}
    messages = [(p.path, p.message) for p in check_config(config)]
    assert messages == [("config['tasks'][0]['depends'][0]", "dependency cycle: a -> b -> a")]
