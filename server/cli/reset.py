"""``frazil reset DATASET [filters] [--suspend|--hard] [--dry-run]``: retry
(or suspend) exactly the tasks that match a filter, through
``POST /datasets/{id}/task_actions/bulk``."""
from __future__ import annotations

import argparse
from typing import Any

from common.cli_errors import CliError
from common.client import call, client_from_env, resolve_dataset
from server.scheduling.task_filter import parse_job_range
from server.store import InvalidArgumentError

FLAGS = (("status", "status", "task status (default: failed)"),
         ("class", "failure_class", "failure class of the last attempt (physics, nonphysics, infra)"),
         ("kind", "kind", "what broke in the last attempt (memory, disk, time, transfer, ...)"),
         ("rule", "rule", "classification rule that matched the last attempt"),
         ("site", "site", "site the task last ran on"),
         ("host", "host", "host of the last attempt"),
         ("pilot", "pilot_id", "pilot of the last attempt"),
         ("name", "name", "task name"),
         ("since", "since", "last attempt ended at or after (ISO date/time)"),
         ("until", "until", "last attempt ended before (ISO date/time)"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset number or id")
    for flag, _, text in FLAGS:
        parser.add_argument(f"--{flag}", help=text)
    parser.add_argument("--jobs", help="job index range A-B (or one index)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--suspend", action="store_true", help="suspend the matches instead of resetting them")
    mode.add_argument("--hard", action="store_true", help="hard reset: any status, failure counters zeroed")
    parser.add_argument("--dry-run", action="store_true", help="only count the matches and show a sample")


def parse_jobs(text: str) -> dict[str, int] | int:
    try:
        return parse_job_range(text)
    except InvalidArgumentError as exc:
        raise CliError(f"--{exc}", exit_code=2) from None


def build_filter(args: argparse.Namespace) -> dict[str, Any]:
    flt: dict[str, Any] = {key: getattr(args, flag) for flag, key, _ in FLAGS if getattr(args, flag)}
    flt.setdefault("status", "failed")
    if args.jobs:
        flt["job_index"] = parse_jobs(args.jobs)
    return flt


def run(args: argparse.Namespace) -> int:
    client = client_from_env()
    dataset = resolve_dataset(client, args.dataset)
    action = "suspend" if args.suspend else "hard_reset" if args.hard else "reset"
    flt = build_filter(args)
    reply = call(client, "POST", f"/datasets/{dataset['dataset_id']}/task_actions/bulk",
                 {"action": action, "filter": flt, "dry_run": args.dry_run})
    shown = " ".join(f"{k}={v}" for k, v in flt.items())
    if args.dry_run:
        print(f"dry run: {reply['count']} task(s) of dataset {dataset['dataset']} match {shown}; "
              f"'{action}' would apply to them")
    else:
        print(f"{action}: {reply['count']} of {reply['matched']} matching task(s) of dataset "
              f"{dataset['dataset']} changed ({shown})")
    for row in reply["sample"]:
        print(f"  job {row['job_index']:>6} {row['name']:<16} {row['status']:<10} "
              f"{row.get('site') or '-':<12} {row.get('host') or '-':<14} {row.get('kind') or '-':<10} "
              f"{row.get('reason') or ''}"[:160])
    if reply["matched"] > len(reply["sample"]):
        print(f"  ... and {reply['matched'] - len(reply['sample'])} more")
    return 0
