"""``frazil logs DATASET TASK``: the newest log of each name (stdlog, stdout, stderr) of a task.

TASK is a task id or ``JOB_INDEX/NAME`` (e.g. ``0/generation``).
"""
from __future__ import annotations

import argparse

from common.cli_errors import CliError
from common.client import call, client_from_env
from server.cli.lookup import resolve_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset number or id")
    parser.add_argument("task", help="task id, or JOB_INDEX/NAME such as 0/generation")
    parser.add_argument("--name", help="only this log (stdout, stderr, stdlog, ...)")


def _task_id(client, dataset_id: str, ref: str) -> str:
    if "/" not in ref:
        return ref
    job, _, name = ref.partition("/")
    if not job.isdigit() or not name:
        raise CliError(f"task {ref!r}: expected a task id or JOB_INDEX/NAME", exit_code=2)
    tasks = call(client, "GET", f"/datasets/{dataset_id}/tasks", {"job_index": job, "name": name, "keys": "task_id"})
    if not tasks:
        raise CliError(f"no task {name!r} in job {job}", exit_code=1)
    return next(iter(tasks))


def run(args: argparse.Namespace) -> int:
    client = client_from_env()
    dataset_id = resolve_dataset(client, args.dataset)["dataset_id"]
    task_id = _task_id(client, dataset_id, args.task)
    logs = call(client, "GET", f"/datasets/{dataset_id}/tasks/{task_id}/logs", {"group": "true", "order": "asc"})["logs"]
    shown = [log for log in logs if not args.name or log.get("name") == args.name]
    if not shown:
        raise CliError(f"no {args.name + ' ' if args.name else ''}logs for task {task_id}", exit_code=1)
    for log in shown:
        print(f"===== {log.get('name')} ({log.get('timestamp', '')}) =====")
        print(log.get("data", ""), end="" if str(log.get("data", "")).endswith("\n") else "\n")
    return 0
