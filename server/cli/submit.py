"""``frazil submit CONFIG.json --jobs N``: check locally, submit, optionally wait.

Module sources the config names by relative path and that lie beside it are
carried with the submission (common/sources.py): pilots stage them into the
task's work dir, where IceProd runs a relative ``src`` as ``./src``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.cli_errors import CliError, load_json_file
from common.client import call, client_from_env
from common.config import upgrade_config
from common.plan import check_submission
from common.sources import collect, encode
from server.cli.lookup import wait_for_action, wait_for_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.json")
    parser.add_argument("--jobs", type=int, required=True, help="number of jobs")
    parser.add_argument("--description", help="dataset description (default: the config's)")
    parser.add_argument("--group", default="users", help="owning group (default users)")
    parser.add_argument("--wait", action="store_true", help="show progress until the dataset finishes")


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise CliError(f"--jobs must be >= 1, got {args.jobs}")
    config = load_json_file(args.config)
    # The server checks again; checking here first answers in milliseconds
    # and shows every problem with its path before anything is sent.
    for warning in upgrade_config(config)[1]:
        print(warning, file=sys.stderr)
    sources, missing = collect(config, Path(args.config).parent)
    problems = [*check_submission(config, args.jobs), *missing]
    if problems:
        raise CliError("the config has problems:\n" + "\n".join(str(p) for p in problems), exit_code=1)
    description = args.description or str(config.get("description") or args.config)
    client = client_from_env()
    message_id = call(client, "POST", "/actions/submit", {
        "config": json.dumps(config), "description": description, "jobs_submitted": args.jobs, "group": args.group,
        **({"sources": encode(sources)} if sources else {}),
    })["result"]
    message = wait_for_action(client, "submit", message_id, what="submitting")
    dataset_id = message["payload"]["dataset_id"]
    dataset = call(client, "GET", f"/datasets/{dataset_id}")
    carried = f", carrying {', '.join(sorted(sources))}" if sources else ""
    print(f"dataset {dataset['dataset']} ({dataset_id}) submitted with {args.jobs} job(s){carried}")
    if args.wait:
        status = wait_for_dataset(client, dataset_id)
        print(f"dataset {dataset['dataset']}: {status}")
        return 0 if status == "complete" else 1
    return 0
