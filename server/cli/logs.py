"""``frazil logs DATASET TASK``: the newest log of each name (stdlog, stdout, stderr) of a task.

TASK is a task id or ``JOB_INDEX/NAME`` (e.g. ``0/generation``).
"""
from __future__ import annotations

import argparse
import shlex
import sys

from common.cli_errors import CliError
from common.client import call, client_from_env, resolve_dataset, resolve_task_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset number or id")
    parser.add_argument("task", help="task id, or JOB_INDEX/NAME such as 0/generation")
    parser.add_argument("--name", help="only this log (stdout, stderr, stdlog, ...)")


def run(args: argparse.Namespace) -> int:
    client = client_from_env()
    dataset = resolve_dataset(client, args.dataset)
    dataset_id = dataset["dataset_id"]
    task_id = resolve_task_id(client, dataset_id, args.task)
    logs = call(client, "GET", f"/datasets/{dataset_id}/tasks/{task_id}/logs", {"group": "true", "order": "asc"})["logs"]
    shown = [log for log in logs if not args.name or log.get("name") == args.name]
    if not shown:
        raise CliError(f"no {args.name + ' ' if args.name else ''}logs for task {task_id}", exit_code=1)
    for log in shown:
        print(f"===== {log.get('name')} ({log.get('timestamp', '')}) =====")
        print(log.get("data", ""), end="" if str(log.get("data", "")).endswith("\n") else "\n")
    # The same task on this machine, with the same runner (docs/cli.md "Debug a task locally").
    number = dataset.get("dataset")
    print(f"# run it locally: frazil run --task {shlex.quote(task_id)} --dataset {number}", file=sys.stderr)
    return 0
