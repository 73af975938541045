"""Status tables (reference §5.1), roll-up rules (§5.3 + tutorial) and reset semantics."""
from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.states import (
    DATASET_STATUSES,
    HARD_RESETTABLE,
    JOB_STATUSES,
    RESET_TARGET,
    RESETTABLE,
    RETRY_TARGET,
    START_STATUS,
    TASK_STATUSES,
    TRANSITIONS,
    dataset_status_from_jobs,
    job_status_from_tasks,
    previous_statuses,
    reset_touches,
    rollup_applies,
    rollup_target,
    transition_allowed,
    validate_status,
)

# Reference §5.1, written out edge by edge so a change to the table is seen.
EDGES = {
    "dataset": {("processing", "suspended"), ("processing", "errors"), ("processing", "complete"),
                ("suspended", "processing"), ("errors", "processing"), ("errors", "suspended")},
    "job": {("processing", "suspended"), ("processing", "errors"), ("processing", "complete"),
            ("suspended", "processing"), ("errors", "processing")},
    "task": {("idle", "waiting"), ("idle", "suspended"),
             ("waiting", "queued"), ("waiting", "idle"), ("waiting", "suspended"),
             *(("queued", t) for t in ("processing", "idle", "waiting", "suspended", "failed", "complete")),
             *(("processing", t) for t in ("idle", "waiting", "queued", "suspended", "failed", "complete")),
             ("suspended", "idle"), ("suspended", "waiting"), ("failed", "idle"), ("failed", "waiting")},
}
KINDS = {"dataset": DATASET_STATUSES, "job": JOB_STATUSES, "task": TASK_STATUSES}


def test_status_lists_in_tutorial_order() -> None:
    assert DATASET_STATUSES == ("processing", "suspended", "errors", "complete")
    assert JOB_STATUSES == DATASET_STATUSES
    assert TASK_STATUSES == ("idle", "waiting", "queued", "processing", "suspended", "failed", "complete")
    assert START_STATUS == {"dataset": "processing", "job": "processing", "task": "idle"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_transition_table_is_exactly_the_reference(kind: str) -> None:
    statuses = KINDS[kind]
    assert set(TRANSITIONS[kind]) == set(statuses)
    allowed = {(a, b) for a, b in itertools.product(statuses, statuses) if transition_allowed(kind, a, b)}
    assert allowed == EDGES[kind]
    assert TRANSITIONS[kind]["complete"] == frozenset()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_previous_statuses_inverts_the_table(kind: str) -> None:
    for new in KINDS[kind]:
        assert previous_statuses(kind, new) == {a for a, b in EDGES[kind] if b == new}
    assert previous_statuses("task", "waiting") == {"idle", "queued", "processing", "suspended", "failed"}
    assert previous_statuses("task", "idle") == {"waiting", "queued", "processing", "suspended", "failed"}


def test_validate_status_errors_are_clear() -> None:
    assert validate_status("task", "queued") == "queued"
    with pytest.raises(ValueError, match="unknown status 'x' for task; expected one of idle, waiting"):
        validate_status("task", "x")
    with pytest.raises(ValueError, match="unknown status 'failed' for dataset"):
        transition_allowed("dataset", "processing", "failed")
    with pytest.raises(ValueError, match="unknown kind 'pilot'"):
        previous_statuses("pilot", "idle")


def test_reset_semantics() -> None:
    assert RESET_TARGET == "idle" and RETRY_TARGET == "waiting"
    assert RESETTABLE == set(TASK_STATUSES) - {"complete", "idle"}
    assert HARD_RESETTABLE == set(TASK_STATUSES)
    # a regular reset uses the table; every status it touches may go to idle
    assert RESETTABLE <= previous_statuses("task", RESET_TARGET)
    assert not reset_touches("complete") and reset_touches("complete", hard=True)
    assert reset_touches("failed") and reset_touches("suspended")
    # the automatic retry after a non-physics failure is an allowed edge
    assert transition_allowed("task", "processing", RETRY_TARGET)


@pytest.mark.parametrize(("counts", "expected"), [
    ({}, None),
    ({"complete": 0}, None),
    ({"complete": 3}, "complete"),
    ({"complete": 2, "idle": 1}, "processing"),
    ({"waiting": 1}, "processing"),
    # any failed task: errors, even while a sibling still runs or dependents wait
    ({"failed": 1, "complete": 1}, "errors"),
    ({"failed": 1, "idle": 2}, "errors"),
    ({"failed": 1, "processing": 1}, "errors"),
    ({"failed": 1, "suspended": 1}, "errors"),
    # suspended and nothing running (tutorial)
    ({"suspended": 1, "complete": 2}, "suspended"),
    ({"suspended": 1, "idle": 2}, "suspended"),
    ({"suspended": 1, "waiting": 1}, "suspended"),
    ({"suspended": 1, "queued": 1}, "processing"),
    ({"suspended": 1, "processing": 1}, "processing"),
])
def test_job_status_from_tasks(counts: dict[str, int], expected: str | None) -> None:
    assert job_status_from_tasks(counts) == expected


def test_job_rollup_agrees_with_iceprod_where_iceprod_decides() -> None:
    """Reference §5.3: IceProd's cron decides when statuses are within these sets."""
    for combo in itertools.chain.from_iterable(
            itertools.combinations(TASK_STATUSES, n) for n in range(1, len(TASK_STATUSES) + 1)):
        present = set(combo)
        derived = job_status_from_tasks({s: 1 for s in combo})
        if present == {"complete"}:
            assert derived == "complete"
        elif present <= {"complete", "suspended"}:
            assert derived == "suspended"
        elif present <= {"complete", "failed", "suspended"}:
            assert derived == "errors"


@pytest.mark.parametrize(("counts", "materialized", "expected"), [
    ({}, True, None),
    ({"complete": 5}, True, "complete"),
    ({"complete": 5}, False, "processing"),
    ({"complete": 5, "processing": 1}, True, "processing"),
    ({"errors": 1, "processing": 9}, True, "processing"),
    ({"errors": 1, "complete": 9}, True, "errors"),
    ({"errors": 1, "suspended": 1}, True, "errors"),
    ({"suspended": 2, "complete": 1}, True, "suspended"),
    ({"errors": 1, "complete": 9}, False, "processing"),
    ({"suspended": 3}, False, "processing"),
])
def test_dataset_status_from_jobs(counts: dict[str, int], materialized: bool, expected: str | None) -> None:
    assert dataset_status_from_jobs(counts, all_materialized=materialized) == expected


@pytest.mark.parametrize(("call", "message"), [
    (lambda: job_status_from_tasks({"running": 1}), "unknown status 'running' for task"),
    (lambda: job_status_from_tasks({"idle": -1}), "non-negative integer"),
    (lambda: job_status_from_tasks({"idle": True}), "non-negative integer"),
    (lambda: dataset_status_from_jobs({"failed": 1}, all_materialized=True), "for job"),
])
def test_rollup_rejects_bad_counts(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_rollup_target() -> None:
    assert rollup_target("job", "processing", "errors") == "errors"
    assert rollup_target("job", "errors", "processing") == "processing"
    assert rollup_target("job", "suspended", "processing") == "processing"
    assert rollup_target("job", "processing", "processing") is None
    assert rollup_target("job", "processing", None) is None
    assert rollup_target("job", "complete", "processing") is None
    # a user-suspended dataset stays suspended until the user resets it
    assert not rollup_applies("dataset", "suspended")
    assert rollup_target("dataset", "suspended", "processing") is None
    assert rollup_target("dataset", "errors", "processing") == "processing"
    assert rollup_target("dataset", "processing", "complete") == "complete"
    # not an edge of the table: left alone
    assert rollup_target("job", "errors", "complete") is None
    with pytest.raises(ValueError, match="not rolled up"):
        rollup_applies("task", "idle")


@given(st.dictionaries(st.sampled_from(TASK_STATUSES), st.integers(min_value=0, max_value=5)))
def test_job_rollup_is_total_and_valid(counts: dict[str, int]) -> None:
    derived = job_status_from_tasks(counts)
    if any(counts.values()):
        assert derived in JOB_STATUSES
    else:
        assert derived is None


@given(st.dictionaries(st.sampled_from(JOB_STATUSES), st.integers(min_value=0, max_value=5)), st.booleans())
def test_dataset_rollup_is_total_and_valid(counts: dict[str, int], materialized: bool) -> None:
    derived = dataset_status_from_jobs(counts, all_materialized=materialized)
    assert (derived is None) == (not any(counts.values()))
    if derived == "complete":
        assert materialized and set(s for s, n in counts.items() if n) == {"complete"}
