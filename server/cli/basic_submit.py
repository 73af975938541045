"""``frazil basic-submit SCRIPT ARGS FILELIST``: run one script over many files, one job per line.

IceProd's ``bin/basic_submit.py`` flow over the same REST calls: submit a
one-task dataset (suspended), materialize its jobs, register each job's
input and output files with ``/datasets/{id}/files``, then set it
processing. Each FILELIST line is ``input ... output``; ARGS may use
``$(input)`` (the job's input file names), ``$(output)``, ``$(dataset)``,
``$(job)``.

Local paths become absolute ``file://`` URLs: pilots must see the same file
system (IceProd required ``/data`` paths for the same reason); URLs
(``gsiftp://``, ``http://``, ``osdf:///icecube/wipac/...`` ...) are used as given;
an attempt gets a storage token for its job's osdf:// files (docs/operators.md).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re

from common.cli_errors import CliError
from common.client import call, client_from_env
from common.plan import check_submission
from server.cli.lookup import wait_for_action
from server.credentials.scopes import namespace_path, scope_dir

TASK_NAME = "BasicSubmit"
TOKEN_ISSUER = "https://token-issuer.icecube.aq"
MAX_SCOPES = 25
URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="the script to run (path or URL)")
    parser.add_argument("args", help="its arguments as one string, e.g. '--foo=bar $(input) $(output)'")
    parser.add_argument("filelist", help="text file: one job per line, 'input1 [input2 ...] output'")
    parser.add_argument("--env-shell", default="", help="environment wrapper, e.g. '/cvmfs/.../icetray-env icetray/v1.9.2'")
    parser.add_argument("--description", default="", help="dataset description")
    parser.add_argument("--group", default="users", help="owning group (default users)")
    parser.add_argument("--request-memory", type=float, default=1.0, help="GB per job (default 1)")
    parser.add_argument("--request-cpus", type=int, default=1)
    parser.add_argument("--request-gpus", type=int, default=0)
    parser.add_argument("--scope", action="append", default=[],
                        help="a storage scope the jobs need beyond those worked out from FILELIST (repeatable)")


def to_url(text: str) -> str:
    if URL.match(text):
        return text
    return pathlib.Path(text).expanduser().resolve().as_uri()


def read_filelist(path: str) -> list[tuple[list[str], str]]:
    try:
        lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from None
    jobs = []
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) < 2:
            raise CliError(f"{path}:{number}: expected 'input ... output', got one word")
        jobs.append(([to_url(w) for w in words[:-1]], to_url(words[-1])))
    if not jobs:
        raise CliError(f"{path}: no jobs (every line is empty or a comment)")
    return jobs


def token_scopes(jobs: list[tuple[list[str], str]], extra: list[str],
                 namespace: str = "/icecube/wipac") -> dict[str, str]:
    """As IceProd's basic_submit: storage.read for inputs and storage.modify for outputs in the
    OSDF namespace (docs/config.md), plus ``--scope``; at most 25."""
    scopes = set(extra)
    for inputs, output in jobs:
        for url, verb in [(u, "storage.read") for u in inputs] + [(output, "storage.modify")]:
            inside = namespace_path(url, namespace)
            if inside is not None:
                scopes.add(f"{verb}:{scope_dir(inside)}")
    if len(scopes) > MAX_SCOPES:
        raise CliError(f"{len(scopes)} storage scopes are too many (at most {MAX_SCOPES}): "
                       "give a common parent directory with --scope")
    return {TOKEN_ISSUER: " ".join(sorted(scopes))} if scopes else {}


def build_config(args: argparse.Namespace, jobs: list[tuple[list[str], str]] = ()) -> dict:
    src = args.script if URL.match(args.script) else str(pathlib.Path(args.script).expanduser().resolve())
    return {
        "version": 3.1,
        "description": args.description or f"basic-submit {pathlib.Path(args.script).name}",
        "tasks": [{
            "name": TASK_NAME,
            "task_files": True,
            "token_scopes": token_scopes(list(jobs), list(getattr(args, "scope", []) or [])),
            "requirements": {"cpu": args.request_cpus, "gpu": args.request_gpus, "memory": args.request_memory},
            "trays": [{"modules": [{"src": src, "args": args.args, "env_shell": args.env_shell}]}],
        }],
    }


def run(args: argparse.Namespace) -> int:
    jobs = read_filelist(args.filelist)
    config = build_config(args, jobs)
    problems = check_submission(config, len(jobs))
    if problems:
        raise CliError("the generated config has problems:\n" + "\n".join(str(p) for p in problems), exit_code=1)
    client = client_from_env()
    message_id = call(client, "POST", "/actions/submit", {
        "config": json.dumps(config), "description": config["description"], "jobs_submitted": len(jobs),
        "group": args.group, "extra_submit_fields": json.dumps({"status": "suspended"}),
    })["result"]
    dataset_id = wait_for_action(client, "submit", message_id, what="submitting")["payload"]["dataset_id"]
    message_id = call(client, "POST", "/actions/materialization", {"dataset_id": dataset_id, "num": len(jobs)})["result"]
    wait_for_action(client, "materialization", message_id, what="creating jobs")
    for job_index, (inputs, output) in enumerate(jobs):
        for url in inputs:
            call(client, "POST", f"/datasets/{dataset_id}/files",
                 {"filename": url, "movement": "input", "job_index": job_index, "task_name": TASK_NAME})
        call(client, "POST", f"/datasets/{dataset_id}/files",
             {"filename": output, "movement": "output", "job_index": job_index, "task_name": TASK_NAME})
    call(client, "PUT", f"/datasets/{dataset_id}/status", {"status": "processing"})
    dataset = call(client, "GET", f"/datasets/{dataset_id}")
    print(f"dataset {dataset['dataset']} ({dataset_id}): {len(jobs)} job(s) submitted")
    return 0
