"""Argument checks both store backends apply (the same error, message and place).

Every check lives here, once, so SQLite and MongoDB refuse the same bad
argument with the same :class:`InvalidArgumentError` and the same message
(the REST layer answers 400 with it). Most need no stored data and run before
the backend touches its database; the few that compare with a stored value
(``jobs_immutable``, "can only increase", a complete dataset) take the values
the backend read inside its transaction. Filters, sorts and cursors are
checked in ``query.py`` (:class:`query.InvalidQuery`).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from common import states
from common.resources import Resources
from common.sources import SHA512_RE, clean_path

from .errors import InvalidArgumentError
from .records import ClaimRequest, NewDataset, NewJob, new_id
from .records.credentials import CREDENTIAL_TYPES, OWNER_KINDS, Credential
from .records.quarantines import QUARANTINE_KINDS

PILOT_STATES = ("active", "lost", "exited")
ACTION_FINISH_STATUSES = ("complete", "error", "queued")
"""What ``finish_action`` may set: done, failed, or released for another worker."""
LOG_ORDERS = ("asc", "desc")
MOVEMENTS = frozenset({"input", "output", "both"})
"""``movement`` values of a per-job file (IceProd's Data dict)."""
JOB_STATUSES = frozenset(states.JOB_STATUSES)
TASK_CREATE_STATUSES = frozenset(states.TASK_STATUSES) - {"processing"}
"""Bulk creates test these sets first (a million tasks): the slower check only names a bad one."""


# ---------------------------------------------------------------- building blocks


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive(name: str, value: Any) -> float:
    """A finite number > 0 (a lease length, a limit)."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a positive number, got {value!r}")
    return value


def one_of(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def json_object(what: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{what} must be an object, got {type(value).__name__}")
    return value


def text(what: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be text, got {type(value).__name__}")
    return value


def need_one(call: str, **given: Any) -> None:
    """At least one of the named selectors must be given (not None)."""
    if all(v is None for v in given.values()):
        raise InvalidArgumentError(f"{call} needs {' or '.join(f'a {k}' for k in given)}")


def check_status(kind: str, status: str) -> str:
    """``status`` if the state machine knows it, else InvalidArgumentError naming it."""
    try:
        return states.validate_status(kind, status)
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None


# ---------------------------------------------------------------- datasets and configs


def new_dataset(new: NewDataset) -> tuple[str, int]:
    """Validate a dataset create; returns (dataset_id, tasks_submitted)."""
    check_status("dataset", new.status)
    for name in ("jobs_submitted", "tasks_per_job"):
        whole_number(name, getattr(new, name))
    tasks_submitted = new.jobs_submitted * new.tasks_per_job if new.tasks_submitted is None else new.tasks_submitted
    return new.dataset_id or new_id(), tasks_submitted


def whole_number(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{name} must be a whole number >= 0, got {value!r}")
    return value


def jobs_submitted_change(dataset_id: str, *, immutable: bool, current: int, asked: int) -> None:
    """Against the stored dataset (inside the backend's transaction): only
    up, and never on a ``jobs_immutable`` dataset."""
    if immutable:
        raise InvalidArgumentError(f"dataset {dataset_id} has jobs_immutable set")
    if asked < current:
        raise InvalidArgumentError(f"jobs_submitted of dataset {dataset_id} can only increase "
                                   f"(is {current}, asked {asked})")


def truncatable(dataset_id: str, status: str) -> None:
    """Against the stored status: a complete dataset has nothing left to truncate."""
    if status == "complete":
        raise InvalidArgumentError(f"dataset {dataset_id} is complete; it cannot be truncated")


def config(value: Any) -> dict[str, Any]:
    return json_object("a dataset config", value)


# ---------------------------------------------------------------- jobs and tasks


def new_jobs(jobs: Iterable[NewJob]) -> None:
    """Job indexes and task ids unique within one create, known job statuses,
    and task statuses a task may be created in (never processing: only a claim
    makes a task processing, because it writes the attempt)."""
    seen: set[int] = set()
    task_ids: set[str] = set()
    ntasks = 0
    for job in jobs:
        if job.job_index in seen:
            raise InvalidArgumentError(f"job_index {job.job_index} appears twice in one create")
        seen.add(job.job_index)
        if job.status not in JOB_STATUSES:
            check_status("job", job.status)
        for task in job.tasks:
            if task.status not in TASK_CREATE_STATUSES:
                check_status("task", task.status)
                raise InvalidArgumentError(f"task {task.name!r} of job {job.job_index}: cannot be created "
                                           "as 'processing' (only a claim makes a task processing)")
        ntasks += len(job.tasks)
        task_ids.update(task.task_id for task in job.tasks)
    if len(task_ids) < ntasks:
        raise InvalidArgumentError("a task_id appears twice in one create")


def settable_task_status(status: str) -> str:
    """A status a task may be set to outside a claim."""
    check_status("task", status)
    if status == "processing":
        raise InvalidArgumentError("a task becomes processing only by a claim (which records the attempt)")
    return status


def bulk_task_selection(dataset_id: str | None, task_ids: Sequence[str] | None,
                        job_ids: Sequence[str] | None) -> None:
    if dataset_id is None and task_ids is None and job_ids is None:
        raise InvalidArgumentError("bulk task status needs a dataset, task ids or job ids")


def task_priorities(priorities: Iterable[tuple[str, Any]]) -> list[tuple[str, float]]:
    """``set_priorities`` input as a list, every priority a finite number."""
    out = []
    for task_id, priority in priorities:
        if not _is_number(priority) or not math.isfinite(priority):
            raise InvalidArgumentError(f"priority of task {task_id} must be a finite number, got {priority!r}")
        out.append((task_id, float(priority)))
    return out


def task_stats(value: Any) -> dict[str, Any]:
    return json_object("task stats", value)


def task_stats_selection(task_id: str | None, dataset_id: str | None) -> None:
    need_one("list_task_stats", task_id=task_id, dataset_id=dataset_id)


# ---------------------------------------------------------------- claim and leases


def lease_seconds(value: Any, name: str = "lease_seconds") -> float:
    return positive(name, value)


def claim_request(request: ClaimRequest) -> None:
    if not isinstance(request.free, Resources):
        raise InvalidArgumentError(f"ClaimRequest.free must be common.resources.Resources, got {request.free!r}")
    lease_seconds(request.lease_seconds)


def count(name: str, value: Any) -> int:
    """How many items a call may move (``limit``, ``num``): a whole number > 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a whole number > 0, got {value!r}")
    return value


# ---------------------------------------------------------------- logs and files


def task_logs_args(order: str, num: int | None) -> None:
    one_of("order", order, LOG_ORDERS)
    if num is not None:
        count("num", num)


def log_selection(dataset_id: str | None, task_id: str | None) -> None:
    need_one("delete_logs", dataset_id=dataset_id, task_id=task_id)


def file_args(remote: str, movement: str, task_id: str | None, job_index: int | None,
              task_name: str | None) -> None:
    """``add_file`` arguments (a clear error before any lookup)."""
    if movement not in MOVEMENTS:
        raise InvalidArgumentError(f"movement must be one of {sorted(MOVEMENTS)}, got {movement!r}")
    if not remote:
        raise InvalidArgumentError("a file needs a filename (remote)")
    if task_id is None and (job_index is None or task_name is None):
        raise InvalidArgumentError("add_file needs a task_id, or a job_index and a task_name")


# ---------------------------------------------------------------- pilots, accounts, actions


def quarantine(kind: Any, name: Any) -> None:
    one_of("kind", kind, QUARANTINE_KINDS)
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(f"a quarantined {kind} needs a name, got {name!r}")


def pilot_state(state: Any) -> str:
    return one_of("pilot state", state, PILOT_STATES)


def priority(value: Any) -> float:
    """A user or group priority: a number in [0, 1]."""
    if not _is_number(value) or not 0 <= value <= 1:
        raise InvalidArgumentError(f"priority must be a number between 0 and 1, got {value!r}")
    return float(value)


def core_hours(value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"core_hours must be a finite number >= 0, got {value!r}")
    return float(value)


def action_payload(value: Any) -> dict[str, Any]:
    return json_object("an action payload", value)


def action_payload_update(update: Any) -> dict[str, Any]:
    """Keys merged into a message's payload: plain names (no dots, no ``$``),
    so MongoDB can set them as ``payload.<key>`` and SQLite stores the same."""
    if update is None:
        return {}
    json_object("a payload update", update)
    for key in update:
        if not isinstance(key, str) or not key or "." in key or key.startswith("$"):
            raise InvalidArgumentError(f"invalid payload key {key!r}")
    return update


def action_finish_status(status: Any) -> str:
    return one_of("an action's final status", status, ACTION_FINISH_STATUSES)


def action_progress(value: Any) -> float:
    if not _is_number(value) or not 0 <= value <= 100:
        raise InvalidArgumentError(f"progress must be a number between 0 and 100, got {value!r}")
    return value


def credential(value: Credential) -> None:
    """A credential both backends may store (its secret already encrypted)."""
    one_of("owner_kind", value.owner_kind, OWNER_KINDS)
    one_of("type", value.type, CREDENTIAL_TYPES)
    if not value.owner or not value.url:
        raise InvalidArgumentError("a credential needs an owner and a url")
    if not isinstance(value.secret, str) or not value.secret:
        raise InvalidArgumentError("the secret must be the encrypted text")


def source_manifest(manifest: Any) -> dict[str, str]:
    """{clean relative path: sha512 hex} (common.sources' rules), or InvalidArgumentError."""
    if not isinstance(manifest, dict):
        raise InvalidArgumentError("a sources manifest must be {path: sha512}")
    for path, digest in manifest.items():
        if not isinstance(path, str) or clean_path(path) != path:
            raise InvalidArgumentError(f"sources: {path!r} is not a clean relative path")
        if not isinstance(digest, str) or not SHA512_RE.match(digest):
            raise InvalidArgumentError(f"sources[{path!r}]: {digest!r} is not a sha512 (128 hex digits)")
    return dict(manifest)


def blobs_stored(files: Mapping[str, str], stored: set[str]) -> None:
    """Every manifest entry names a blob the store holds (``stored``: the digests found)."""
    for path, digest in files.items():
        if digest not in stored:
            raise InvalidArgumentError(f"sources[{path!r}]: no stored blob {digest[:16]}...")
