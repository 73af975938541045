"""``frazil run``: run a task on this machine with the pilot's own runner.

Two forms:

* ``frazil run CONFIG.json --job J [--task NAME]``: a config from disk, no server;
* ``frazil run --task TASK_ID [--dataset D] [--attempt N]``: a task of a server
  (``FRAZIL_URL``/``FRAZIL_TOKEN``), fetched exactly as a pilot's claim would
  carry it (:mod:`pilot.debug_task`), without claiming or reporting it.

Either way it is the pilot's runner — same plan, same staging, same limits
(the task's requirements are hard limits here), same monitoring and failure
classification — so what fails under a pilot fails here the same way.
``--dry-run`` prints the resolved command lines instead of running them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import shlex
import signal
import sys
from typing import Any

from common.config import prepare_config
from common.plan import JobContext, PlanError, TaskPlan, build_task_plan, find_task, task_names
from common.cli_errors import CliError, load_json_file

DEFAULT_BASE = pathlib.Path("frazil-data")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.json", nargs="?",
                        help="a dataset config; without it, --task names a task of the server at FRAZIL_URL")
    parser.add_argument("--job", type=int, default=None, help="job index (0-based; with CONFIG.json)")
    parser.add_argument("--task", help="with CONFIG.json: task name (or index), default every task of the job in "
                                       "order; without: the server's task id, or JOB_INDEX/NAME with --dataset")
    parser.add_argument("--dataset", default=None,
                        help="with CONFIG.json: dataset number for $(dataset) (default: the config's 'dataset' "
                             "key or 1); without: the task's dataset (number or id)")
    parser.add_argument("--attempt", type=int, default=None,
                        help="server task: reproduce this attempt (its config version and requirements); "
                             "default the newest")
    parser.add_argument("--env-from-attempt", action="store_true",
                        help="server task: use the attempt's recorded environment values (site, GPU visibility) "
                             "where they can be; the differences from this machine are printed first")
    parser.add_argument("--stage-out", action="store_true",
                        help="server task: write outputs to their destinations (default: they stay in the work dir)")
    parser.add_argument("--scratch-url", default=None,
                        help="server task: the server's scratch store for job_temp files (default FRAZIL_URL/scratch)")
    parser.add_argument("--jobs-submitted", type=int, default=None, help="$(jobs_submitted) (default: job + 1)")
    parser.add_argument("--dry-run", action="store_true", help="print each module's command line instead of running it")
    parser.add_argument("--workdir", default=str(DEFAULT_BASE / "work"), help="where task work dirs are made")
    parser.add_argument("--scratch", default=str(DEFAULT_BASE / "scratch"),
                        help="local directory used as site_temp (job_temp/dataset_temp files) unless the config sets one")


def _prepare_config(config: Any, scratch: pathlib.Path) -> dict[str, Any]:
    prepared, problems = prepare_config(config)  # a filled copy, as the server stores it
    if problems:
        raise CliError("invalid config:\n" + "\n".join(str(p) for p in problems), exit_code=1)
    options = prepared.setdefault("options", {})
    # job_temp without a remote goes to the server's scratch store under a
    # pilot; standalone, a local directory stands in for it.
    options.setdefault("site_temp", scratch.resolve().as_uri())
    return prepared


def _context(args: argparse.Namespace, config: dict[str, Any]) -> JobContext:
    if args.job is None:
        raise CliError("--job is required with CONFIG.json", exit_code=2)
    if args.job < 0:
        raise CliError(f"--job must be >= 0, got {args.job}")
    if args.dataset is not None and not str(args.dataset).isdigit():
        raise CliError(f"--dataset must be a dataset number with CONFIG.json, got {args.dataset!r}", exit_code=2)
    dataset = int(args.dataset) if args.dataset is not None else None
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
        return [build_task_plan(config, index, ctx, strict=True, defaults_filled=True) for index in selected]
    except PlanError as exc:
        raise CliError("cannot resolve the task:\n" + "\n".join(f"{p.path}: {p.message}" for p in exc.problems), exit_code=1)


def print_dry_run(plan: TaskPlan, out=sys.stdout) -> None:
    print(f"# task {plan.task_name} (dataset {plan.dataset}, job {plan.job}); requirements {json.dumps(plan.requirements, sort_keys=True)}", file=out)
    if plan.container:
        print(f"# container {plan.container}: modules run in this image (docs/pilot.md)", file=out)
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


async def _run_plans(plans: list[TaskPlan], workdir: pathlib.Path, *, attempt: int | None = None,
                     environ: dict[str, str] | None = None) -> dict[str, Any]:
    from common.resources import Resources
    from pilot.runner import run_task  # the runner pulls in psutil; dry runs do not need it

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    summary: dict[str, Any] = {}
    for plan in plans:
        print(f"# running task {plan.task_name} of job {plan.job}", file=sys.stderr)
        # The task's requirements are hard limits, as under a pilot whose slot it shares.
        limits = Resources.from_requirements(plan.requirements)
        result = await run_task(plan, workdir_base=workdir, stop_event=stop, limits=limits, attempt=attempt,
                                environ=environ)
        summary = {**result.summary(), "task": plan.task_name}
        print(f"# task {plan.task_name}: {summary['status']}", file=sys.stderr)
        if summary["status"] != "complete":
            break
    return summary


def run(args: argparse.Namespace) -> int:
    if args.config is None:
        if args.task is None:
            raise CliError("give CONFIG.json --job J, or --task TASK_ID for a task of the server", exit_code=2)
        if args.job is not None:
            raise CliError("--job goes with CONFIG.json; a server task knows its job", exit_code=2)
        return run_server_task(args)
    for flag in ("attempt", "scratch_url"):
        if getattr(args, flag) is not None:
            raise CliError(f"--{flag.replace('_', '-')} is for a server task (without CONFIG.json)", exit_code=2)
    if args.env_from_attempt or args.stage_out:
        raise CliError("--env-from-attempt and --stage-out are for a server task (without CONFIG.json)", exit_code=2)
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


def run_server_task(args: argparse.Namespace) -> int:
    """``frazil run --task``: fetch the task as a pilot would get it and run (or print) it here."""
    from common.client import client_from_env, token_from_env, url_from_env
    from common.plan import PlanError
    from pilot import debug_task
    from pilot.attempt import build_plan

    url = url_from_env()
    client = client_from_env()
    scratch_url = (args.scratch_url or f"{url}/scratch").rstrip("/")
    fetched = debug_task.fetch_task(client, args.task, dataset_ref=args.dataset, attempt=args.attempt,
                                    scratch_url=scratch_url)
    try:
        plan = build_plan(fetched.doc)
    except (PlanError, ValueError, TypeError) as exc:
        # A pilot reports this as a physics config failure; say the same here.
        problems = "\n".join(f"{p.path}: {p.message}" for p in exc.problems) if isinstance(exc, PlanError) else str(exc)
        print(json.dumps({"status": "failed", "class": "physics", "kind": "config", "rule": None,
                          "reason": f"cannot plan the task: {problems}", "resources": {}}))
        return 1
    print(debug_task.describe(fetched), file=sys.stderr)
    if args.dry_run:
        print_dry_run(plan)
        planned = {shlex.join(module.argv) for _, module in plan.modules()}
        for argv in fetched.recorded_argv:
            if argv and shlex.join(argv) not in planned:  # e.g. shell variables the pilot resolved
                print(f"# attempt {fetched.attempt.get('attempt')} ran: {shlex.join(argv)}")
        return 0
    environ = dict(os.environ)
    recorded = fetched.recorded_environment
    if args.env_from_attempt:
        for line in debug_task.environment_differences(recorded, debug_task.local_environment()):
            print(f"# differs from the attempt: {line}", file=sys.stderr)
        if "CUDA_VISIBLE_DEVICES" in recorded:
            environ["CUDA_VISIBLE_DEVICES"] = recorded["CUDA_VISIBLE_DEVICES"]
        if "OS_ARCH" in recorded and recorded["OS_ARCH"] != debug_task.local_environment().get("OS_ARCH"):
            print(f"# the attempt ran on {recorded['OS_ARCH']}: run this on a matching machine or image to "
                  "reproduce it exactly", file=sys.stderr)
    if not args.stage_out:
        for destination in debug_task.keep_outputs_local(plan):
            print(f"# output kept in the work dir, not written to {destination} (--stage-out writes it)",
                  file=sys.stderr)
    # job_temp inputs come from the server's scratch store, read with the user's own token.
    from pilot.scratch import use_server_credentials
    use_server_credentials(url, token_from_env())
    workdir = pathlib.Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    summary = asyncio.run(_run_plans([plan], workdir, attempt=None, environ=environ))
    print(json.dumps(summary))
    return 0 if summary.get("status") == "complete" else 1
