"""``frazil validate CONFIG.json [--jobs N]``: every problem, with its path."""
from __future__ import annotations

import argparse

from common.plan import check_submission, task_names
from common.cli_errors import CliError, load_json_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.json")
    parser.add_argument("--jobs", type=int, default=1, help="number of jobs the dataset would have (default 1)")
    parser.add_argument("--dataset", type=int, default=1, help="dataset number to expand $(dataset) with")


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise CliError(f"--jobs must be >= 1, got {args.jobs}")
    config = load_json_file(args.config)
    problems = check_submission(config, args.jobs, dataset=args.dataset)
    for problem in problems:
        print(str(problem))
    if problems:
        print(f"{args.config}: {len(problems)} problem(s)")
        return 1
    names = task_names(config)
    print(f"{args.config}: OK ({len(names)} task(s): {', '.join(names)}; checked jobs 0 and {args.jobs - 1})")
    return 0
