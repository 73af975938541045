"""Statuses, allowed transitions and status roll-up for datasets, jobs and tasks.

The transition tables are IceProd's (reference §5.1) unchanged, so a client
that knows IceProd's state machine sees the same answers.  What frazil adds is
the roll-up as pure functions: DESIGN.md §3.4 asks that job and dataset status
follow their tasks at once (on every task change) rather than from a late
cron, so the rule must be cheap, deterministic and usable by every store.
"""
from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "DATASET_STATUSES",
    "JOB_STATUSES",
    "TASK_STATUSES",
    "STATUSES",
    "START_STATUS",
    "TRANSITIONS",
    "ACTIVE_TASK_STATUSES",
    "RUNNING_TASK_STATUSES",
    "REOPENED_BY_MORE_JOBS",
    "RESET_TARGET",
    "RESETTABLE",
    "HARD_RESETTABLE",
    "RETRY_TARGET",
    "transition_allowed",
    "previous_statuses",
    "validate_status",
    "reset_touches",
    "job_status_from_tasks",
    "dataset_status_from_jobs",
    "rollup_applies",
    "rollup_target",
]

# In the tutorial's order (it is also the order pages and counts show them).
DATASET_STATUSES: tuple[str, ...] = ("processing", "suspended", "errors", "complete")
JOB_STATUSES: tuple[str, ...] = ("processing", "suspended", "errors", "complete")
TASK_STATUSES: tuple[str, ...] = (
    "idle", "waiting", "queued", "processing", "suspended", "failed", "complete",
)
STATUSES: dict[str, tuple[str, ...]] = {
    "dataset": DATASET_STATUSES, "job": JOB_STATUSES, "task": TASK_STATUSES,
}
START_STATUS: dict[str, str] = {"dataset": "processing", "job": "processing", "task": "idle"}


def _table(rows: dict[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    return {status: frozenset(targets) for status, targets in rows.items()}


TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    "dataset": _table({
        "processing": ("suspended", "errors", "complete"),
        "suspended": ("processing",),
        "errors": ("processing", "suspended"),
        "complete": (),
    }),
    "job": _table({
        "processing": ("suspended", "errors", "complete"),
        "suspended": ("processing",),
        "errors": ("processing",),
        "complete": (),
    }),
    "task": _table({
        "idle": ("waiting", "suspended"),
        "waiting": ("queued", "idle", "suspended"),
        "queued": ("processing", "idle", "waiting", "suspended", "failed", "complete"),
        "processing": ("idle", "waiting", "queued", "suspended", "failed", "complete"),
        "suspended": ("idle", "waiting"),
        "failed": ("idle", "waiting"),
        "complete": (),
    }),
}

#: Task statuses from which a task can still get to run without a human.
ACTIVE_TASK_STATUSES = frozenset({"idle", "waiting", "queued", "processing"})
#: Task statuses that hold (or are about to hold) a slot.
RUNNING_TASK_STATUSES = frozenset({"queued", "processing"})
#: A dataset in one of these whose ``jobs_submitted`` is raised has new jobs to run:
#: it goes back to ``processing`` (the roll-up brings ``errors`` back if failed jobs remain).
REOPENED_BY_MORE_JOBS = frozenset({"complete", "errors"})

#: Where a manual reset (and a hard reset) puts a task (reference §5.2 step 6).
RESET_TARGET = "idle"
#: A regular reset touches every task that is not complete (tutorial); a task
#: already idle needs nothing.  A hard reset touches every task, complete ones
#: included, bypasses the transition table and also zeroes the failure count.
RESETTABLE = frozenset({"waiting", "queued", "processing", "suspended", "failed"})
HARD_RESETTABLE = frozenset(TASK_STATUSES)
#: Where a non-physics failure sends a task for an automatic retry.
RETRY_TARGET = "waiting"


def _statuses(kind: str) -> tuple[str, ...]:
    try:
        return STATUSES[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(STATUSES)}") from None


def validate_status(kind: str, status: str) -> str:
    """Return ``status`` if it is one of ``kind``'s statuses, else a clear ValueError."""
    known = _statuses(kind)
    if status not in known:
        raise ValueError(f"unknown status {status!r} for {kind}; expected one of {', '.join(known)}")
    return status


def transition_allowed(kind: str, old: str, new: str) -> bool:
    """Whether ``old -> new`` is in the table (staying put is not a transition)."""
    validate_status(kind, old)
    validate_status(kind, new)
    return new in TRANSITIONS[kind][old]


def previous_statuses(kind: str, new: str) -> frozenset[str]:
    """Statuses a document may have for a "set status to ``new``" to apply.

    This is IceProd's ``prev_statuses``: stores update with ``status IN
    previous_statuses(kind, new)`` so the check and the write are one atomic
    operation.
    """
    validate_status(kind, new)
    return frozenset(old for old, targets in TRANSITIONS[kind].items() if new in targets)


def reset_touches(status: str, *, hard: bool = False) -> bool:
    """Whether a (hard) reset of a dataset or job moves a task in ``status``."""
    validate_status("task", status)
    return status in (HARD_RESETTABLE if hard else RESETTABLE)


def _counts(kind: str, counts: Mapping[str, int]) -> dict[str, int]:
    present: dict[str, int] = {}
    for status, n in counts.items():
        validate_status(kind, status)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"count of {kind}s in {status!r} must be a non-negative integer, got {n!r}")
        if n:
            present[status] = n
    return present


def job_status_from_tasks(task_status_counts: Mapping[str, int]) -> str | None:
    """The status a job's tasks imply, or None for a job without tasks.

    In order:

    1. every task complete -> ``complete``;
    2. any task failed -> ``errors`` (tutorial: "at least one task that has
       failed").  IceProd's cron waits until no task is active, but tasks
       that depend on the failed one stay ``idle`` for ever, so in a DAG that
       moment never comes; the job cannot complete without a human anyway;
    3. any task suspended and none queued or processing -> ``suspended``
       (tutorial: "a task has been suspended and no tasks are running");
    4. otherwise ``processing``.

    Because the rule looks only at the tasks, resetting a failed or suspended
    task brings the job back to ``processing`` with no extra step.
    """
    present = _counts("task", task_status_counts)
    if not present:
        return None
    if set(present) == {"complete"}:
        return "complete"
    if "failed" in present:
        return "errors"
    if "suspended" in present and not RUNNING_TASK_STATUSES & set(present):
        return "suspended"
    return "processing"


def dataset_status_from_jobs(job_status_counts: Mapping[str, int], *, all_materialized: bool) -> str | None:
    """The status a dataset's jobs imply, or None for a dataset without jobs.

    ``all_materialized`` is true when no more jobs will be created (every job
    submitted exists, or the dataset was truncated).  In order:

    1. any job processing -> ``processing``;
    2. every job complete -> ``complete`` once all are materialized, else
       ``processing`` (more jobs are coming);
    3. (nothing processing, some errors/suspended) jobs still to be
       materialized -> ``processing``, as IceProd leaves such a dataset alone;
    4. any job in errors -> ``errors``; else ``suspended``.

    Unlike jobs, a dataset goes to ``errors`` only when nothing is left
    running: one failed task among 100,000 jobs must not stop production.
    """
    present = _counts("job", job_status_counts)
    if not present:
        return None
    if "processing" in present:
        return "processing"
    if set(present) == {"complete"}:
        return "complete" if all_materialized else "processing"
    if not all_materialized:
        return "processing"
    return "errors" if "errors" in present else "suspended"


def rollup_applies(kind: str, current: str) -> bool:
    """Whether the roll-up may overwrite a ``kind``'s ``current`` status.

    ``complete`` is final (only a hard reset, which bypasses the table,
    reopens it).  A dataset the user ``suspended`` stays suspended until the
    user resets it: its jobs' statuses must not silently resume it.  Jobs
    follow their tasks in every other case, so resetting one task of a
    suspended job resumes that job.
    """
    validate_status(kind, current)
    if kind == "task":
        raise ValueError("task status is not rolled up; it is set by the scheduler, pilots and users")
    if current == "complete":
        return False
    return not (kind == "dataset" and current == "suspended")


def rollup_target(kind: str, current: str, derived: str | None) -> str | None:
    """The status to store after a roll-up, or None to leave ``current`` alone.

    Combines :func:`rollup_applies` with the transition table, so a caller
    can write ``UPDATE ... SET status=target WHERE status=current`` without
    further checks.
    """
    if derived is None or derived == current or not rollup_applies(kind, current):
        return None
    return derived if transition_allowed(kind, current, derived) else None
