"""``frazil accounting [--by dataset|user|group|site] [--since T] [--until T] [--csv]``:
wall, core and GPU hours per day (``GET /accounting``)."""
from __future__ import annotations

import argparse
import csv
import sys

from common.client import call, client_from_env

COLUMNS = ("wall_hours", "core_hours", "gpu_hours", "attempts")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", choices=("dataset", "user", "group", "site"), default="dataset",
                        help="what to sum by (default dataset)")
    parser.add_argument("--since", help="ISO date/time (default: 30 days before --until)")
    parser.add_argument("--until", help="ISO date/time (default: now)")
    parser.add_argument("--csv", action="store_true", help="CSV on stdout (day, key, hours, attempts)")


def run(args: argparse.Namespace) -> int:
    query = {"by": args.by, **{k: v for k, v in (("since", args.since), ("until", args.until)) if v}}
    reply = call(client_from_env(), "GET", "/accounting", query)
    rows = reply["rows"]
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["day", args.by, *COLUMNS])
        writer.writerows([r["day"], r["key"], *(r[c] for c in COLUMNS)] for r in rows)
        return 0
    print(f"hours by {args.by}, {reply['since'][:16]} to {reply['until'][:16]} UTC")
    if not rows:
        print("  no attempts ended in this window")
        return 0
    width = max(len(args.by), *(len(r["key"]) for r in rows))
    print(f"  {'DAY':<10}  {args.by.upper():<{width}}  {'WALL h':>10}  {'CORE h':>10}  {'GPU h':>10}  {'ATTEMPTS':>8}")
    for r in rows:
        print(f"  {r['day']:<10}  {r['key']:<{width}}  {r['wall_hours']:>10.2f}  {r['core_hours']:>10.2f}  "
              f"{r['gpu_hours']:>10.2f}  {r['attempts']:>8}")
    return 0
