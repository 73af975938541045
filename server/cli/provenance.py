"""``frazil provenance URL_OR_PATH``: which dataset, job, task, attempt and
config version made this file, on which pilot and host, with which command
lines; for a local file, also whether its content is still what was made."""
from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import urllib.parse
from typing import Any

from common.cli_errors import CliError
from common.client import call, client_from_env
from common.transfer.checksum import sha512_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="URL_OR_PATH",
                        help="the output's URL, or a local path (looked up as its file:// URL)")
    parser.add_argument("--json", action="store_true", help="print the server's JSON reply")


def as_url(target: str) -> str:
    """URLs pass as they are; a plain path becomes the absolute file:// URL pilots report."""
    if not target.strip():
        raise CliError("empty URL or path")
    if "://" in target:
        return target
    return pathlib.Path(target).expanduser().absolute().as_uri()


def local_checksum(target: str) -> str | None:
    """sha512 of the named local file, when the target is one that exists."""
    if target.startswith("file://"):
        path = pathlib.Path(urllib.parse.unquote(urllib.parse.urlsplit(target).path))
    elif "://" in target:
        return None  # a remote file: nothing local to compare
    else:
        path = pathlib.Path(target).expanduser()
    if not path.is_file():
        return None
    try:
        return sha512_file(path)
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _describe(record: dict[str, Any], local_sha512: str | None) -> list[str]:
    check = ""
    if local_sha512 is not None:
        check = " (the local file matches)" if local_sha512 == record.get("sha512") else \
            f" (the local file DIFFERS: its sha512 is {local_sha512})"
    lines = [
        f"{record['url']}",
        f"  size {record.get('size')} bytes, sha512 {record.get('sha512')}{check}",
        f"  dataset {record.get('dataset')} ({record.get('dataset_id')}), job {record.get('job_index')}, "
        f"task {record.get('task_name')} ({record.get('task_id')}), attempt {record.get('attempt')}",
        f"  config version {record.get('config_version')}, made {record.get('created')}",
    ]
    if record.get("pilot_id") or record.get("host"):
        lines.append(f"  pilot {record.get('pilot_id')} on {record.get('host') or '?'} at site "
                     f"{record.get('site') or '?'}, frazil {record.get('frazil_version') or '?'}")
    for module in record.get("modules") or []:
        argv = shlex.join(str(a) for a in (module.get("argv") or []))
        shell = module.get("env_shell")
        if isinstance(shell, list):
            shell = shlex.join(str(a) for a in shell)
        prefix = f"{shell} " if shell else ""
        lines.append(f"  module {module.get('name') or '?'}: {prefix}{argv} (exit {module.get('exit_code')})")
    return lines


def run(args: argparse.Namespace) -> int:
    url = as_url(args.target)
    client = client_from_env()
    try:
        reply = call(client, "GET", "/provenance", {"url": url})
    finally:
        client.close()
    if args.json:
        print(json.dumps(reply, indent=2, sort_keys=True))
        return 0
    local_sha512 = local_checksum(args.target)
    for index, record in enumerate(reply.get("results", [])):
        if index:
            print()
        print("\n".join(_describe(record, local_sha512)))
    return 0
