"""``frazil extend DATASET --jobs N`` (or ``--add K``): more jobs for a dataset.

Raises ``jobs_submitted`` (``PUT /datasets/{id}/jobs_submitted``); the server
creates and runs the new jobs, and a complete dataset goes back to processing.
"""
from __future__ import annotations

import argparse

from common.cli_errors import CliError
from common.client import call, client_from_env, resolve_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset number or id")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--jobs", type=int, help="the dataset's new number of jobs (jobs_submitted)")
    how.add_argument("--add", type=int, help="this many jobs more")


def run(args: argparse.Namespace) -> int:
    client = client_from_env()
    dataset = resolve_dataset(client, args.dataset)
    before = int(dataset["jobs_submitted"])
    if args.add is not None and args.add < 1:
        raise CliError(f"--add must be >= 1, got {args.add}", exit_code=2)
    total = before + args.add if args.add is not None else args.jobs
    if total <= before:
        raise CliError(f"dataset {dataset['dataset']} has {before} jobs already; --jobs must be more than that",
                       exit_code=2)
    call(client, "PUT", f"/datasets/{dataset['dataset_id']}/jobs_submitted", {"jobs_submitted": total})
    after = call(client, "GET", f"/datasets/{dataset['dataset_id']}")
    print(f"dataset {dataset['dataset']}: {before} -> {after['jobs_submitted']} jobs, status {after['status']}")
    return 0
