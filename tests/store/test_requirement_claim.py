"""Contract: every requirement form the one parser reads is sized the same by
the claim of both backends (SQLite and MongoDB's wire protocol).

The forms are the table of tests/server/test_requirement_forms.py (which runs
them through submit, materialization and the HTTP claim); here they go
straight into ``create_jobs`` as IceProd's ``POST /tasks`` would store them.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from common.resources import RESOURCE_NAMES, Resources, is_macro
from server.store import Store
from tests.server.test_requirement_forms import GOOD_FORMS

from .helpers import pilot, queued_dataset

FORMS = [(req, size) for _, req, size in GOOD_FORMS if not any(is_macro(v) for v in req.values())]


@pytest.mark.parametrize(("requirements", "size"), FORMS, ids=[str(req) for req, _ in FORMS])
async def test_the_claim_sizes_every_form_as_the_parser(store: Store, requirements: dict[str, Any],
                                                       size: Resources) -> None:
    assert Resources.from_requirements(requirements) == size
    _, jobs = await queued_dataset(store, 1, requirements=requirements)
    where = {"site": requirements.get("site", ""), "os": requirements.get("os", [])}
    for name in RESOURCE_NAMES:
        value = getattr(size, name)
        if value > 0:
            short = replace(size, **{name: value - 1 if name in ("cpu", "gpu") else round(value * 0.99, 9)})
            assert await store.claim(pilot(**where, **short.as_dict())) is None, f"fits with too little {name}"
    claimed = await store.claim(pilot(**where, **size.as_dict()))
    assert claimed is not None and claimed.task.task_id == jobs[0].tasks[0].task_id
    assert Resources.from_requirements(claimed.task.requirements) == size  # what the pilot reads from the reply
