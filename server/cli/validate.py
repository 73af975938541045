"""``frazil validate CONFIG.json [--jobs N]``: every problem, with its path."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.config import upgrade_config
from common.plan import check_submission, task_names
from common.cli_errors import CliError, load_json_file
from common.sources import collect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.json")
    parser.add_argument("--jobs", type=int, default=1, help="number of jobs the dataset would have (default 1)")
    parser.add_argument("--dataset", type=int, default=1, help="dataset number to expand $(dataset) with")


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise CliError(f"--jobs must be >= 1, got {args.jobs}")
    config = load_json_file(args.config)
    # What a submit would check and say: a 3.0/3.1 config is converted to 3.2 first,
    # and every key the conversion drops is a warning (exit 0 when only warnings).
    warnings = upgrade_config(config)[1]
    for warning in warnings:
        print(str(warning))
    # and, as frazil submit, that each relative module src is beside the config or staged by data
    problems = [*check_submission(config, args.jobs, dataset=args.dataset), *collect(config, Path(args.config).parent)[1]]
    for problem in problems:
        print(str(problem))
    if problems:
        print(f"{args.config}: {len(problems)} problem(s)")
        return 1
    names = task_names(config)
    noted = f", {len(warnings)} warning(s)" if warnings else ""
    print(f"{args.config}: OK{noted} ({len(names)} task(s): {', '.join(names)}; checked jobs 0 and {args.jobs - 1})")
    return 0
