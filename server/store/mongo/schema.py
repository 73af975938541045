"""Collections and indexes of the MongoDB store (created idempotently at start).

One database holds every collection (unlike IceProd's one database per handler
module, which collides with MongoDB's internal ``config`` database). Documents
use the record's id as ``_id`` so the primary key index is the lookup index.

The claim path's index is ``tasks (status, class_key, priority desc, seq)``
(``class_key`` = resource class + site + os, ``rules.task_shape``):
a claim names the candidate classes with ``$in`` and sorts by priority, which a
real MongoDB answers by merging the per-class index ranges (no in-memory sort),
so its cost does not grow with the number of queued tasks.
"""
from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COUNTERS = "counters"
DATASETS = "datasets"
RIGHTS = "dataset_rights"
CONFIGS = "configs"
JOBS = "jobs"
TASKS = "tasks"
QUEUE_CLASSES = "queue_classes"
ATTEMPTS = "attempts"
OUTPUTS = "outputs"
TASK_STATS = "task_stats"
LOGS = "logs"
LOG_CHUNKS = "log_chunks"
FILES = "dataset_files"
PILOTS = "pilots"
USERS = "users"
GROUPS = "groups"
USAGE = "usage"
LEASES = "loop_leases"
REVOCATIONS = "revocations"
SCRATCH = "scratch_files"
ACTIONS = "actions"
CREDENTIALS = "credentials"
SOURCE_BLOBS = "source_blobs"
CONFIG_SOURCES = "config_sources"
QUARANTINES = "quarantines"
ALERT_SUBSCRIPTIONS = "alert_subscriptions"
ALERT_EVENTS = "alert_events"

A, D = ASCENDING, DESCENDING

#: Key patterns the hot paths hint, so a real MongoDB's planner cannot pick a
#: plan that scans past non-candidate tasks as the queue grows.
CLAIM_KEY = [("status", A), ("class_key", A), ("priority", D), ("seq", A)]
WAITING_KEY = [("dataset_id", A), ("status", A), ("not_before", A), ("prio_offset", D), ("seq", A)]
"""Queueing merges each processing dataset's best waiting tasks from this
index (task priority = dataset ``task_base`` + task ``prio_offset``), asking
for ``not_before: null``: paced retries (which have one) sort apart and are
not read. Its ``(dataset_id, status)`` prefix serves the per-dataset status
counts too."""
NOT_BEFORE_KEY = [("not_before", A)]
"""Sparse: only paced retries still held back carry ``not_before`` (it is
unset, never set to null, when they become eligible)."""
RELEASE_KEY = [("dataset_id", A), ("deps_check", A)]
"""Release walks the woken tasks of one processing dataset at a time."""

RETIRED_INDEXES: dict[str, list[tuple[str, ...]]] = {
    "tasks": [("status", "priority", "seq"), ("dataset_id", "status", "priority", "seq"), ("deps_check",),
              ("dataset_id", "status", "prio_offset", "seq")],
    "jobs": [("dataset_id", "status")],
}
"""Key fields of indexes of earlier versions that the ones above replace
(dropped at start if present, whatever their name): queueing no longer sorts
all waiting tasks by a stored priority, release no longer reads woken tasks of
every dataset, the roll-up sweep pages a (dataset, status) of jobs in
``seq`` order, and the waiting index leaves paced retries out."""

INDEXES: dict[str, list[IndexModel]] = {
    DATASETS: [
        IndexModel([("dataset", A)], name="dataset_number", unique=True),
        IndexModel([("status", A), ("dataset", A)], name="status_number"),
    ],
    CONFIGS: [IndexModel([("dataset_id", A), ("version", A)], name="dataset_version", unique=True)],
    JOBS: [
        IndexModel([("dataset_id", A), ("job_index", A)], name="dataset_job_index", unique=True),
        IndexModel([("dataset_id", A), ("status", A), ("seq", A)], name="dataset_status_seq"),
        IndexModel([("dataset_id", A), ("seq", A)], name="dataset_seq"),
        IndexModel([("seq", A)], name="seq"),
    ],
    TASKS: [
        # claim: candidate classes by $in, best priority first, ties by creation
        IndexModel(CLAIM_KEY, name="claim"),
        # queueing waiting -> queued: per dataset, best offset first
        IndexModel(WAITING_KEY, name="dataset_waiting_paced"),
        IndexModel(NOT_BEFORE_KEY, name="not_before", sparse=True),
        IndexModel([("dataset_id", A), ("name", A)], name="dataset_name"),
        # counts by (name, status) for the dataset page, answered from the index
        IndexModel([("dataset_id", A), ("name", A), ("status", A), ("task_index", A)], name="dataset_name_status"),
        IndexModel([("dataset_id", A), ("seq", A)], name="dataset_seq"),
        IndexModel([("job_id", A), ("task_index", A)], name="job"),
        IndexModel([("seq", A)], name="seq"),
        # dependency release: who depends on a task that just completed, and
        # which idle tasks were woken up (sparse: only woken tasks carry it)
        IndexModel([("depends", A)], name="depends"),
        IndexModel(RELEASE_KEY, name="dataset_deps_check",
                   partialFilterExpression={"deps_check": {"$exists": True}}),
        # lease expiry by time (renewals look tasks up by _id)
        IndexModel([("status", A), ("lease_expires", A)], name="status_lease"),
        # crash markers of the transaction-less fallback (see txn.py)
        IndexModel([("pending_attempt.instance_id", A)], name="pending_attempt", sparse=True),
        IndexModel([("creating", A)], name="creating", sparse=True),
    ],
    ATTEMPTS: [
        IndexModel([("task_id", A), ("attempt", A)], name="task_attempt"),
        # accounting by end time; a dataset's newest attempts and completion rate
        IndexModel([("end", A)], name="end"),
        IndexModel([("dataset_id", A), ("end", A), ("status", A)], name="dataset_end"),
    ],
    OUTPUTS: [IndexModel([("url", A), ("created", A)], name="url")],
    TASK_STATS: [
        IndexModel([("task_id", A), ("seq", A)], name="task"),
        IndexModel([("dataset_id", A), ("seq", A)], name="dataset"),
    ],
    LOGS: [
        IndexModel([("task_id", A), ("timestamp", A)], name="task"),
        IndexModel([("dataset_id", A), ("seq", A)], name="dataset"),
        IndexModel([("seq", A)], name="seq"),
        # log retention walks logs by age, per name and per dataset
        IndexModel([("name", A), ("timestamp", A), ("log_id", A)], name="name_time"),
        IndexModel([("dataset_id", A), ("timestamp", A), ("log_id", A)], name="dataset_time"),
    ],
    LOG_CHUNKS: [IndexModel([("log_id", A), ("n", A)], name="log_chunk", unique=True)],
    FILES: [
        IndexModel([("dataset_id", A), ("seq", A)], name="dataset"),
        IndexModel([("task_id", A)], name="task"),
    ],
    PILOTS: [
        IndexModel([("site", A)], name="site"),
        IndexModel([("state", A), ("last_seen", A)], name="state_seen"),
    ],
    SCRATCH: [IndexModel([("dataset_id", A), ("job_index", A)], name="dataset_job")],
    CREDENTIALS: [
        IndexModel([("owner_kind", A), ("owner", A), ("url", A)], name="owner_url", unique=True),
        IndexModel([("refreshable", A), ("expiration", A)], name="refresh"),
    ],
    CONFIG_SOURCES: [
        # _id is "<dataset_id>/<version>"; this serves "newest <= version" and a dataset's manifests
        IndexModel([("dataset_id", A), ("version", D)], name="dataset_version"),
    ],
    QUARANTINES: [IndexModel([("kind", A), ("name", A), ("expires", A)], name="kind_name")],
    ALERT_SUBSCRIPTIONS: [IndexModel([("username", A), ("seq", A)], name="user")],
    ALERT_EVENTS: [IndexModel([("status", A), ("next_try", A)], name="due"),
                   IndexModel([("subscription_id", A), ("seq", A)], name="subscription")],
    ACTIONS: [
        IndexModel([("status", A), ("priority", D), ("seq", A)], name="pop"),
        IndexModel([("action", A), ("dataset_id", A), ("seq", A)], name="action_dataset"),
        IndexModel([("action", A), ("dedupe_key", A)], name="dedupe"),
    ],
}


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Create every collection's indexes; creating an existing index is a no-op."""
    for collection, retired in RETIRED_INDEXES.items():
        async for ix in await db[collection].list_indexes():
            if tuple(ix["key"]) in retired:
                await db[collection].drop_index(ix["name"])
    for collection, models in INDEXES.items():
        await db[collection].create_indexes(models)
