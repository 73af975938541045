"""``frazil dataset suspend|reset|hard-reset|truncate DATASET``."""
from __future__ import annotations

import argparse

from common.client import call, client_from_env, resolve_dataset
from server.cli.lookup import wait_for_action

ACTIONS = {"suspend": "suspend", "reset": "reset", "hard-reset": "hard_reset"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=[*ACTIONS, "truncate"])
    parser.add_argument("dataset", help="dataset number or id")


def run(args: argparse.Namespace) -> int:
    client = client_from_env()
    dataset = resolve_dataset(client, args.dataset)
    dataset_id = dataset["dataset_id"]
    if args.action == "truncate":
        call(client, "POST", f"/datasets/{dataset_id}/dataset_actions/truncate")
        print(f"dataset {dataset['dataset']}: truncated (no more jobs will be created)")
        return 0
    message_id = call(client, "POST", "/actions/dataset_status",
                      {"dataset_id": dataset_id, "action": ACTIONS[args.action]})["result"]
    wait_for_action(client, "dataset_status", message_id, what=args.action)
    status = call(client, "GET", f"/datasets/{dataset_id}")["status"]
    print(f"dataset {dataset['dataset']}: {args.action} done, status {status}")
    return 0
