"""``frazil run --task TASK_ID``: a server's task, fetched as a pilot would get it, run here.

A physicist whose task failed on the grid wants to run *that* task — the
config version its attempt ran with, its job index, its per-job files, the module
sources carried with its submission, the
requirements it was claimed with — on their own machine and see the same
failure. This module builds the same document a claim reply carries, from
the ordinary read routes (so the rights are those of reading the dataset),
and hands it to the pilot's own plan builder and runner.

Nothing here changes the task on the server: no claim, no report, no log
upload. A local run is not an attempt. Outputs stay in the work dir unless
``--stage-out`` asks for them to be written to their destinations.
"""
from __future__ import annotations

import json
import os
import platform
import socket
from dataclasses import dataclass, field
from typing import Any, Mapping

from rest_tools.client import RestClient

from common.cli_errors import CliError
from common.client import call, resolve_dataset, resolve_task_id
from common.plan import TaskPlan
from pilot.runner.result import RECORDED_ENV

RECORDED = (*RECORDED_ENV, "SITE")
"""Environment values a pilot records with each module (``environment`` of a module record)."""


@dataclass
class ServerTask:
    """Everything fetched about one task: the claim-shaped document and its attempt."""

    doc: dict[str, Any]
    """What a claim reply would carry: the task, runtime values, config, files."""
    attempt: dict[str, Any] | None
    """The attempt reproduced (attempt N, else the newest), None before any attempt."""
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def recorded_argv(self) -> list[list[str]]:
        return [list(m.get("argv") or []) for m in (self.attempt or {}).get("modules") or []]

    @property
    def recorded_environment(self) -> dict[str, str]:
        """The environment values the pilot recorded (site, OS_ARCH, GPU visibility)."""
        found: dict[str, str] = {}
        if self.attempt and self.attempt.get("site"):
            found["SITE"] = str(self.attempt["site"])
        for module in (self.attempt or {}).get("modules") or []:
            for key, value in (module.get("environment") or {}).items():
                if key in RECORDED and value is not None:
                    found.setdefault(key, str(value))
        return found


def _uses_task_files(config: Any) -> bool:
    """Whether any task of the config asks for its per-job files (IceProd's ``task_files``)."""
    return any(isinstance(task, dict) and task.get("task_files") is True
               for task in (config or {}).get("tasks") or [])


def _pick_attempt(attempts: list[dict[str, Any]], number: int | None, task_id: str) -> dict[str, Any] | None:
    if number is None:
        return attempts[-1] if attempts else None
    for attempt in attempts:
        if attempt.get("attempt") == number:
            return attempt
    have = ", ".join(str(a.get("attempt")) for a in attempts) or "none"
    raise CliError(f"task {task_id} has no attempt {number} (attempts: {have})", exit_code=1)


def _find_dataset(client: RestClient, dataset_ref: str | None, task_ref: str) -> str:
    """The dataset id: from --dataset, else from the task (an admin-only route in IceProd)."""
    if dataset_ref is not None:
        return str(resolve_dataset(client, dataset_ref)["dataset_id"])
    if "/" in task_ref:
        raise CliError(f"task {task_ref!r} names a job and task name: give --dataset too", exit_code=2)
    try:
        return str(call(client, "GET", f"/tasks/{task_ref}")["dataset_id"])
    except CliError as exc:
        raise CliError(f"cannot find task {task_ref} without --dataset ({exc}); "
                       "give --dataset DATASET (number or id)", exit_code=1) from None


def fetch_task(client: RestClient, task_ref: str, *, dataset_ref: str | None = None,
               attempt: int | None = None, scratch_url: str) -> ServerTask:
    """Fetch a task as a pilot's claim would carry it, without claiming it."""
    dataset_id = _find_dataset(client, dataset_ref, task_ref)
    task_id = resolve_task_id(client, dataset_id, task_ref)
    task = call(client, "GET", f"/datasets/{dataset_id}/tasks/{task_id}")
    dataset = call(client, "GET", f"/datasets/{dataset_id}")
    attempts = call(client, "GET", f"/datasets/{dataset_id}/tasks/{task_id}/attempts")["attempts"]
    chosen = _pick_attempt(attempts, attempt, task_id)
    version = (chosen or {}).get("config_version") or task.get("config_version")
    config = call(client, "GET", f"/config/{dataset_id}", {"version": version} if version else None)
    if not isinstance(config, dict):
        raise CliError(f"dataset {dataset_id} has no config version {version}", exit_code=1)
    files: list[dict[str, Any]] = []
    if _uses_task_files(config):
        listed = call(client, "GET", f"/datasets/{dataset_id}/files/{task_id}")["files"]
        files = [{k: f.get(k) for k in ("remote", "local", "type", "movement", "transfer") if k in f}
                 for f in listed]
    # module sources carried at submit, fetched (with the user's token) as a pilot fetches them
    manifest = call(client, "GET", f"/datasets/{dataset_id}/sources", {"version": version} if version else None)
    base = str(client.address).rstrip("/")
    sources = {path: f"{base}/datasets/{dataset_id}/sources/{digest}"
               for path, digest in (manifest.get("sources") or {}).items()}
    doc = dict(task)
    # The attempt ran with the requirements it was claimed with (escalation may have raised them since).
    if chosen and chosen.get("resources"):
        doc["requirements"] = {**(task.get("requirements") or {}), **chosen["resources"]}
    doc.update(dataset=dataset.get("dataset"), jobs_submitted=dataset.get("jobs_submitted"),
               debug=bool(dataset.get("debug")), config_version=version, config=config, files=files,
               scratch_url=scratch_url, attempt=(chosen or {}).get("attempt"), sources=sources)
    return ServerTask(doc=doc, attempt=chosen, attempts=attempts)


def keep_outputs_local(plan: TaskPlan) -> list[str]:
    """Outputs stay in the work dir: a debug run must never overwrite production data.

    Returns the destinations that were not written, for the user to see.
    """
    skipped: list[str] = []
    for entry in plan.all_data():
        if not entry.is_output:
            continue
        skipped.append(entry.url)
        if entry.movement == "both":
            entry.movement = "input"
        else:
            entry.transfer = "no"
    return skipped


def local_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """This machine's values of what a pilot records, for the comparison printed first."""
    env = os.environ if environ is None else environ
    found = {"SITE": env.get("SITE", "local"), "HOST": socket.gethostname(),
             "OS_ARCH": env.get("OS_ARCH") or f"{platform.system()}_{platform.machine()}"}
    if "CUDA_VISIBLE_DEVICES" in env:
        found["CUDA_VISIBLE_DEVICES"] = env["CUDA_VISIBLE_DEVICES"]
    return found


def environment_differences(recorded: Mapping[str, str], here: Mapping[str, str]) -> list[str]:
    """One line per value that differs between the attempt and this machine."""
    lines = []
    for key in sorted(set(recorded) | set(here)):
        if key in recorded and recorded.get(key) != here.get(key):
            lines.append(f"{key}: attempt {recorded[key]!r}, here {here.get(key, '(unset)')!r}")
    return lines


def describe(server_task: ServerTask) -> str:
    """One line saying which task, job, attempt and config version is reproduced."""
    doc, attempt = server_task.doc, server_task.attempt
    where = (f"attempt {attempt.get('attempt')} ({attempt.get('status')} on {attempt.get('site') or '-'}/"
             f"{attempt.get('host') or '-'})") if attempt else "no attempt yet"
    return (f"# task {doc.get('name')} ({doc.get('task_id')}) of dataset {doc.get('dataset')} job "
            f"{doc.get('job_index')}: {where}, config version {doc.get('config_version')}, "
            f"requirements {json.dumps(doc.get('requirements') or {}, sort_keys=True)}")
