"""``frazil run CONFIG.json --job J``: run a job's tasks on this machine, no server.

This is the pilot's own task runner with the config resolved locally, so
what works here works under a pilot (same plan, same staging, same
monitoring, same failure classification). ``--dry-run`` prints the resolved
command lines instead of running them.
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import json
import pathlib
import shlex
import signal
import sys
from typing import Any

from common.config import check_config
from common.plan import JobContext, PlanError, TaskPlan, build_task_plan, find_task, task_names
from common.cli_errors import CliError, load_json_file

DEFAULT_BASE = pathlib.Path("frazil-data")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.json")
    parser.add_argument("--job", type=int, required=True, help="job index (0-based)")
    parser.add_argument("--task", help="task name (or index); default: every task of the job in order")
    parser.add_argument("--dataset", type=int, default=None, help="dataset number for $(dataset) (default: the config's 'dataset' key or 1)")
    parser.add_argument("--jobs-submitted", type=int, default=None, help="$(jobs_submitted) (default: job + 1)")
    parser.add_argument("--dry-run", action="store_true", help="print each module's command line instead of running it")
    parser.add_argument("--workdir", default=str(DEFAULT_BASE / "work"), help="where task work dirs are made")
    parser.add_argument("--scratch", default=str(DEFAULT_BASE / "scratch"),
                        help="local directory used as site_temp (job_temp/dataset_temp files) unless the config sets one")


def _prepare_config(config: Any, scratch: pathlib.Path) -> dict[str, Any]:
    problems = check_config(config)
    if problems:
        raise CliError("invalid config:\n" + "\n".join(str(p) for p in problems), exit_code=1)
    prepared = copy.deepcopy(config)
    options = prepared.setdefault("options", {})
    # job_temp without a remote goes to the server's scratch store under a
    # pilot; standalone, a local directory stands in for it.
    options.setdefault("site_temp", scratch.resolve().as_uri())
    return prepared


def _context(args: argparse.Namespace, config: dict[str, Any]) -> JobContext:
    if args.job < 0:
        raise CliError(f"--job must be >= 0, got {args.job}")
    dataset = args.dataset
    if dataset is None:
        dataset = config.get("dataset") if isinstance(config.get("dataset"), int) else 1
    jobs_submitted = args.jobs_submitted if args.jobs_submitted is not None else args.job + 1
    if jobs_submitted <= args.job:
        raise CliError(f"--jobs-submitted ({jobs_submitted}) must be greater than --job ({args.job})")
    # Relative module sources are found beside the config, as IceProd ships
    # them from the submit directory.
    src_base = pathlib.Path(args.config).resolve().parent.as_uri()
    return JobContext(dataset=dataset, job=args.job, jobs_submitted=jobs_submitted, dataset_id=str(dataset),
                      src_base=src_base)


def _plans(config: dict[str, Any], args: argparse.Namespace, ctx: JobContext) -> list[TaskPlan]:
    try:
        selected = [find_task(config, args.task)[0]] if args.task is not None else list(range(len(task_names(config))))
        return [build_task_plan(config, index, ctx, strict=True) for index in selected]
    except PlanError as exc:
        raise CliError("cannot resolve the task:\n" + "\n".join(f"{p.path}: {p.message}" for p in exc.problems), exit_code=1)


def print_dry_run(plan: TaskPlan, out=sys.stdout) -> None:
    print(f"# task {plan.task_name} (dataset {plan.dataset}, job {plan.job}); requirements {json.dumps(plan.requirements, sort_keys=True)}", file=out)
    for entry in plan.steering_data + plan.task_data:
        _print_transfer(entry, out)
    for tray, module in plan.modules():
        if module.index == 0:
            print(f"# tray {tray.index} {tray.name!r} iteration {tray.iteration}", file=out)
            for entry in tray.data:
                _print_transfer(entry, out)
        for entry in module.fetch + module.data:
            _print_transfer(entry, out)
        env = "cleaned environment (env_clear)" if module.env_clear else "inherited environment"
        print(f"# module {module.index} {module.name!r}: {env}", file=out)
        print(shlex.join(module.argv), file=out)


def _print_transfer(entry: Any, out) -> None:
    if entry.transfer == "no":
        return
    optional = " (optional)" if entry.optional else ""
    if entry.is_input:
        print(f"# stage in{optional}: {entry.url} -> {entry.local}", file=out)
    if entry.is_output:
        print(f"# stage out{optional}: {entry.local} -> {entry.url}", file=out)


async def _run_plans(plans: list[TaskPlan], workdir: pathlib.Path) -> dict[str, Any]:
    from pilot.runner import run_task  # the runner pulls in psutil; dry runs do not need it

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    summary: dict[str, Any] = {}
    for plan in plans:
        print(f"# running task {plan.task_name} of job {plan.job}", file=sys.stderr)
        result = await run_task(plan, workdir_base=workdir, stop_event=stop)
        summary = {**result.summary(), "task": plan.task_name}
        print(f"# task {plan.task_name}: {summary['status']}", file=sys.stderr)
        if summary["status"] != "complete":
            break
    return summary


def run(args: argparse.Namespace) -> int:
    config = _prepare_config(load_json_file(args.config), pathlib.Path(args.scratch))
    plans = _plans(config, args, _context(args, config))
    if args.dry_run:
        for plan in plans:
            print_dry_run(plan)
        return 0
    workdir = pathlib.Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.scratch).mkdir(parents=True, exist_ok=True)
    summary = asyncio.run(_run_plans(plans, workdir))
    print(json.dumps(summary))
    return 0 if summary.get("status") == "complete" else 1
