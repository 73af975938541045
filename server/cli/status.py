"""``frazil status [DATASET]``: all datasets, or one dataset's jobs and tasks by status."""
from __future__ import annotations

import argparse

from common.client import call, client_from_env, resolve_dataset

TASK_COLUMNS = ("idle", "waiting", "queued", "processing", "complete", "failed", "suspended")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", nargs="?", help="dataset number or id (default: list datasets)")


def _list(client) -> int:
    datasets = call(client, "GET", "/datasets", {"keys": "dataset|status|username|group|description"})
    rows = sorted(datasets.values(), key=lambda d: d.get("dataset", 0), reverse=True)
    if not rows:
        print("no datasets")
        return 0
    print(f"{'DATASET':>8}  {'STATUS':<10}  {'OWNER (GROUP)':<24}  DESCRIPTION")
    for d in rows:
        owner = f"{d.get('username', '')} ({d.get('group', '')})"
        print(f"{d.get('dataset', '?'):>8}  {d.get('status', ''):<10}  {owner:<24}  {d.get('description', '')}")
    return 0


def run(args: argparse.Namespace) -> int:
    client = client_from_env()
    if not args.dataset:
        return _list(client)
    dataset = resolve_dataset(client, args.dataset)
    dataset_id = dataset["dataset_id"]
    print(f"dataset {dataset['dataset']} ({dataset_id}): {dataset['status']}"
          f"{'  [truncated]' if dataset.get('truncated') else ''}")
    print(f"  {dataset.get('description', '')}")
    print(f"  owner {dataset.get('username')} ({dataset.get('group')}), {dataset.get('jobs_submitted')} jobs, "
          f"priority {dataset.get('priority')}")
    jobs = call(client, "GET", f"/datasets/{dataset_id}/job_counts/status")
    print("  jobs: " + (", ".join(f"{k} {v}" for k, v in sorted(jobs.items())) or "none yet"))
    by_name = call(client, "GET", f"/datasets/{dataset_id}/task_counts/name_status")
    if by_name:
        width = max(len(n) for n in by_name)
        print("  " + "task".ljust(width) + "".join(f"{c:>11}" for c in TASK_COLUMNS))
        for name, counts in by_name.items():
            print("  " + name.ljust(width) + "".join(f"{counts.get(c, 0):>11}" for c in TASK_COLUMNS))
    _forecast(call(client, "GET", f"/datasets/{dataset_id}/forecast"))
    for row in call(client, "GET", f"/datasets/{dataset_id}/rightsizing")["rows"]:
        print(f"  sizing: {row['advice']}")
    return 0


def _forecast(f: dict) -> None:
    """The forecast block (GET /datasets/{id}/forecast)."""
    eta = "done" if f["tasks_left"] == 0 else (
        f"{f['eta_hours']:.1f} h (about {f['eta']})" if f["eta_hours"] is not None else "unknown (nothing finished lately)")
    print(f"  forecast: {f['tasks_left']} tasks left, {f['rate_per_hour']:.2f} tasks/h over the last "
          f"{f['window_hours']:g} h, ETA {eta}")
    unknown = f" (+{f['tasks_left_unestimated']} tasks without finished runs to go by)" \
        if f["tasks_left_unestimated"] else ""
    print(f"  remaining: {f['cpu_hours_left']:.1f} CPU-hours, {f['gpu_hours_left']:.1f} GPU-hours{unknown}")
