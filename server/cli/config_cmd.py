"""``frazil config DATASET [--version V]``: the config a dataset runs (or ran) with."""
from __future__ import annotations

import argparse
import json

from common.client import call, client_from_env, resolve_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset number or id")
    parser.add_argument("--version", type=int, help="config version (default: the newest)")
    parser.add_argument("--versions", action="store_true", help="list the versions instead")


def run(args: argparse.Namespace) -> int:
    client = client_from_env()
    dataset_id = resolve_dataset(client, args.dataset)["dataset_id"]
    if args.versions:
        for v in call(client, "GET", f"/config/{dataset_id}/versions")["versions"]:
            print(f"{v['version']:>4}  {v.get('created', '')}  {v.get('author', '')}  {v.get('sha256', '')[:12]}  "
                  f"{v.get('comment', '')}")
        return 0
    query = {"version": args.version} if args.version is not None else None
    print(json.dumps(call(client, "GET", f"/config/{dataset_id}", query), indent=2))
    return 0
