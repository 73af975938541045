"""Shared bits of the client commands: waiting for actions and datasets with a progress bar."""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

from rest_tools.client import RestClient
from tqdm import tqdm

from common.cli_errors import CliError
from common.client import call


def wait_for_action(client: RestClient, action: str, message_id: str, *, what: str, timeout: float = 3600,
                    poll: float = 0.5) -> dict[str, Any]:
    """Poll ``/actions/{action}/{id}`` until complete (returned) or error (CliError)."""
    deadline = time.monotonic() + timeout
    with tqdm(total=100, desc=what, unit="%", file=sys.stderr, leave=False, disable=None) as bar:
        while True:
            message = call(client, "GET", f"/actions/{action}/{message_id}")
            progress = float((message.get("payload") or {}).get("progress") or 0)
            if message["status"] == "complete":
                bar.update(100 - bar.n)
                return message
            if message["status"] == "error":
                raise CliError(f"{what} failed: {message.get('error_message') or 'unknown error'}", exit_code=1)
            bar.update(max(0.0, min(progress, 100) - bar.n))
            if time.monotonic() > deadline:
                raise CliError(f"{what}: still {message['status']} after {timeout:.0f} s", exit_code=1)
            time.sleep(poll)


def wait_for_dataset(client: RestClient, dataset_id: str, *, poll: float = 1.0,
                     on_update: Callable[[dict[str, int]], None] | None = None) -> str:
    """Show task progress until the dataset is complete, errors or suspended; return its status."""
    with tqdm(total=0, desc="tasks complete", unit="task", file=sys.stderr, disable=None) as bar:
        while True:
            counts = call(client, "GET", f"/datasets/{dataset_id}/task_counts/status")
            total = sum(counts.values())
            if total and bar.total != total:
                bar.total = total
            bar.update(counts.get("complete", 0) - bar.n)
            bar.set_postfix({k: v for k, v in counts.items() if k != "complete" and v}, refresh=True)
            if on_update:
                on_update(counts)
            status = call(client, "GET", f"/datasets/{dataset_id}")["status"]
            if status in {"complete", "errors", "suspended"}:
                return status
            time.sleep(poll)
