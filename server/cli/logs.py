"""``frazil logs DATASET TASK``: a task's logs (stdlog, stdout, stderr), by attempt.

TASK is a task id or ``JOB_INDEX/NAME`` (e.g. ``0/generation``). The newest
attempt is shown by default, every block labelled with its attempt;
``--attempt N`` picks one, ``--all`` shows every attempt in order, and
``--follow`` keeps printing a running task's logs as they grow (as the
website's live tail does) until the task stops running.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Any

from rest_tools.client import RestClient

from common.cli_errors import CliError
from common.client import call, client_from_env, resolve_dataset, resolve_task_id

META_KEYS = "log_id|name|attempt|timestamp|size"
FOLLOW_POLL_SECONDS = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset number or id")
    parser.add_argument("task", help="task id, or JOB_INDEX/NAME such as 0/generation")
    parser.add_argument("--name", help="only this log (stdout, stderr, stdlog, ...)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--attempt", type=int, help="the logs of this attempt (default: the newest)")
    which.add_argument("--all", action="store_true", help="the logs of every attempt, oldest first")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep printing the logs as they grow until the task stops running")


def _metas(client: RestClient, dataset_id: str, task_id: str, name: str | None) -> list[dict[str, Any]]:
    """Every log of the task without its text, oldest first ([] when there is none yet)."""
    found = call(client, "GET", f"/datasets/{dataset_id}/tasks/{task_id}/logs", {"order": "asc", "keys": META_KEYS},
                 missing_ok=True)
    return [log for log in (found or {}).get("logs", []) if not name or log.get("name") == name]


def _attempt_of(log: dict[str, Any]) -> int:
    return int(log.get("attempt") or 0)


def _select(logs: list[dict[str, Any]], attempt: int | None, every: bool) -> list[dict[str, Any]]:
    if every or not logs:
        return logs
    if attempt is None:
        attempt = max(_attempt_of(log) for log in logs)
    chosen = [log for log in logs if _attempt_of(log) == attempt]
    if not chosen:
        have = ", ".join(str(a) for a in sorted({_attempt_of(log) for log in logs}))
        raise CliError(f"no logs of attempt {attempt} (attempts with logs: {have})", exit_code=1)
    return chosen


def _followed(log: dict[str, Any], args: argparse.Namespace) -> bool:
    return args.all or args.attempt is None or _attempt_of(log) == args.attempt


def _header(log: dict[str, Any]) -> str:
    attempt = log.get("attempt")
    label = f"attempt {attempt}" if attempt else "no attempt"
    return f"===== {log.get('name')} · {label} ({log.get('timestamp', '')}) ====="


def _print(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    sys.stdout.flush()


def _follow(client: RestClient, dataset_id: str, task_id: str, args: argparse.Namespace,
            printed: dict[str, int]) -> None:
    """Print what each log of the followed attempt gained since the last look."""
    current: str | None = None
    while True:
        running = call(client, "GET", f"/datasets/{dataset_id}/tasks/{task_id}",
                       {"keys": "status"}).get("status") == "processing"
        logs = _metas(client, dataset_id, task_id, args.name)
        shown = [log for log in logs if _followed(log, args)]
        for log in shown:
            log_id = str(log["log_id"])
            if int(log.get("size") or 0) <= printed.get(log_id, 0):
                continue
            doc = call(client, "GET", f"/datasets/{dataset_id}/logs/{log_id}", {"offset": printed.get(log_id, 0)})
            if doc.get("data"):
                if current != log_id:
                    _print(_header(log))
                    current = log_id
                sys.stdout.write(doc["data"])
                sys.stdout.flush()
            printed[log_id] = int(doc.get("offset") or printed.get(log_id, 0))
        if not running:
            return
        time.sleep(FOLLOW_POLL_SECONDS)


def run(args: argparse.Namespace) -> int:
    client = client_from_env()
    dataset = resolve_dataset(client, args.dataset)
    dataset_id = dataset["dataset_id"]
    task_id = resolve_task_id(client, dataset_id, args.task)
    if args.follow and args.attempt is None and not args.all:
        # Follow the attempt running now, even before it has written a line.
        args.attempt = int(call(client, "GET", f"/datasets/{dataset_id}/tasks/{task_id}",
                                {"keys": "attempts"}).get("attempts") or 0) or None
    logs = _metas(client, dataset_id, task_id, args.name)
    if not logs and not args.follow:
        raise CliError(f"no {args.name + ' ' if args.name else ''}logs for task {task_id}", exit_code=1)
    printed: dict[str, int] = {}
    shown = [log for log in logs if _followed(log, args)] if args.follow else _select(logs, args.attempt, args.all)
    for log in shown:
        doc = call(client, "GET", f"/datasets/{dataset_id}/logs/{log['log_id']}")
        _print(_header(log))
        _print(str(doc.get("data", "")))
        printed[str(log["log_id"])] = len(str(doc.get("data", "")))
    if args.follow:
        _follow(client, dataset_id, task_id, args, printed)
    # The same task on this machine, with the same runner (docs/cli.md "Debug a task locally").
    print(f"# run it locally: frazil run --task {shlex.quote(task_id)} --dataset {dataset.get('dataset')}",
          file=sys.stderr)
    return 0
