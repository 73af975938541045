"""sqlite3 rows <-> records. Column lists live here so every query selects
the same columns in the same order as the converters expect."""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..records import (
    Attempt, ConfigVersion, Dataset, DatasetFile, Job, Log, Pilot, ScratchFile, Task, TaskStat, User,
)

DATASET_COLS = ("dataset_id, dataset, description, jobs_submitted, tasks_submitted, tasks_per_job, grp, "
                "username, status, start_date, status_changed, priority, debug, jobs_immutable, truncated, "
                "always_active")
JOB_COLS = "job_id, dataset_id, job_index, status, status_changed"
TASK_PRIORITY = ("(CASE WHEN status IN ('idle', 'waiting') THEN min(1.0, max(0.0, prio_offset + coalesce("
                 "(SELECT task_base FROM datasets WHERE datasets.dataset_id = tasks.dataset_id), 0))) "
                 "ELSE priority END)")
"""A task's priority as documents show it. A task not yet queued has none of
its own: it is its dataset's ``task_base`` plus its ``prio_offset``, so a
dataset priority change shows at once without rewriting the tasks; queueing
writes the value into ``priority``, which the claim index orders by."""
TASK_COLS = ("task_id, dataset_id, job_id, job_index, task_index, name, depends, requirements, status, "
             f"status_changed, {TASK_PRIORITY} AS priority, failures, failures_nonphysics, failures_infra, evictions, walltime, "
             "walltime_err, walltime_err_n, site, instance_id, pilot_id, lease_expires, resource_class, "
             "attempts, config_version, not_before")
ATTEMPT_COLS = ('task_id, attempt, instance_id, dataset_id, job_id, pilot_id, host, site, start, "end", '
                "status, failure_class, kind, rule, reason, resources, resources_used, modules, exit_codes, "
                "inputs, outputs, frazil_version, config_version, requirement_changes, time_used")
PILOT_COLS = ("pilot_id, resources, free, site, hostname, os, provider, provider_job_id, version, state, "
              "drain, tasks, registered, last_seen")
FILE_COLS = "file_id, dataset_id, task_id, remote, movement, local, type, transfer, compression"


dumps = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON with one shared encoder (bulk paths call it per task)."""


def to_dataset(r: sqlite3.Row) -> Dataset:
    return Dataset(r["dataset_id"], r["dataset"], r["description"], r["jobs_submitted"], r["tasks_submitted"],
                   r["tasks_per_job"], r["grp"], r["username"], r["status"], r["start_date"],
                   r["status_changed"], float(r["priority"]), bool(r["debug"]), bool(r["jobs_immutable"]),
                   bool(r["truncated"]), bool(r["always_active"]))


def to_job(r: sqlite3.Row) -> Job:
    return Job(r["job_id"], r["dataset_id"], r["job_index"], r["status"], r["status_changed"])


def to_task(r: sqlite3.Row) -> Task:
    return Task(
        task_id=r["task_id"], dataset_id=r["dataset_id"], job_id=r["job_id"], job_index=r["job_index"],
        task_index=r["task_index"], name=r["name"], depends=json.loads(r["depends"]),
        requirements=json.loads(r["requirements"]), status=r["status"], status_changed=r["status_changed"],
        priority=float(r["priority"]), failures=r["failures"], failures_nonphysics=r["failures_nonphysics"],
        failures_infra=r["failures_infra"], evictions=r["evictions"], walltime=float(r["walltime"]),
        walltime_err=float(r["walltime_err"]), walltime_err_n=r["walltime_err_n"], site=r["site"],
        instance_id=r["instance_id"], pilot_id=r["pilot_id"], lease_expires=r["lease_expires"],
        resource_class=r["resource_class"], attempts=r["attempts"], config_version=r["config_version"],
        not_before=r["not_before"])


def to_attempt(r: sqlite3.Row) -> Attempt:
    return Attempt(
        task_id=r["task_id"], attempt=r["attempt"], instance_id=r["instance_id"], dataset_id=r["dataset_id"],
        job_id=r["job_id"], pilot_id=r["pilot_id"], host=r["host"], site=r["site"], start=r["start"],
        end=r["end"], status=r["status"], failure_class=r["failure_class"], kind=r["kind"], rule=r["rule"],
        reason=r["reason"], resources=json.loads(r["resources"]),
        resources_used=json.loads(r["resources_used"]), modules=json.loads(r["modules"]),
        exit_codes=json.loads(r["exit_codes"]), inputs=json.loads(r["inputs"]),
        outputs=json.loads(r["outputs"]), frazil_version=r["frazil_version"],
        config_version=r["config_version"], requirement_changes=json.loads(r["requirement_changes"]),
        time_used=r["time_used"])


def to_config(r: sqlite3.Row) -> ConfigVersion:
    return ConfigVersion(r["dataset_id"], r["version"], json.loads(r["config"]), r["author"], r["comment"],
                         r["created"], r["sha256"])


def to_pilot(r: sqlite3.Row) -> Pilot:
    return Pilot(r["pilot_id"], json.loads(r["resources"]), json.loads(r["free"]), r["site"], r["hostname"],
                 json.loads(r["os"]), r["provider"], r["provider_job_id"], r["version"], r["state"],
                 bool(r["drain"]), json.loads(r["tasks"]), r["registered"], r["last_seen"])


def to_file(r: sqlite3.Row) -> DatasetFile:
    return DatasetFile(r["file_id"], r["dataset_id"], r["task_id"], r["remote"], r["movement"], r["local"],
                       r["type"], r["transfer"], bool(r["compression"]))


def to_user(r: sqlite3.Row) -> User:
    return User(r["user_id"], r["username"], r["priority"])


def to_task_stat(r: sqlite3.Row) -> TaskStat:
    return TaskStat(r["task_stat_id"], r["task_id"], r["dataset_id"], r["create_date"], json.loads(r["stats"]))


def to_scratch(r: sqlite3.Row) -> ScratchFile:
    return ScratchFile(r["dataset_id"], r["path"], r["size"], r["sha512"], r["job_index"], r["created"])


def to_log(r: sqlite3.Row, data: str) -> Log:
    return Log(r["log_id"], r["name"], data, r["timestamp"], r["dataset_id"], r["task_id"], r["attempt"],
               r["size"])
