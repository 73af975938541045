#!/usr/bin/env python3
"""IceProd's ``bin/basic_submit.py``, call for call, against frazil.

"Run this script over N jobs": each line of FILES is ``input ... output``.
The REST calls are IceProd's (reference §12), made with wipac-rest-tools'
``RestClient`` exactly as IceProd's script makes them:

  1. POST /actions/submit (the dataset starts suspended), poll GET /actions/submit/{id}
  2. POST /actions/materialization {dataset_id, num}, poll it
  3. per job: POST /datasets/{id}/files for each input and the output
  4. PUT /datasets/{id}/status {status: processing}
  5. GET /datasets/{id} -> the dataset number

Only the address and the token differ from IceProd: they come from
FRAZIL_URL and FRAZIL_TOKEN (``frazil token create``) instead of IceProd's
device-flow login (``SavedDeviceGrantAuth``). As in IceProd, local paths
must be under /data and become ``osdf:///icecube/wipac/<path>``; URLs
(file://, http(s)://, gsiftp://, osdf://) are used as given; the task's
``token_scopes`` are worked out from the osdf:// files as IceProd's script
does (``--scope`` adds more; at most 25).
"""
import argparse
import json
import logging
import os
import re
import sys
import time

import requests
from rest_tools.client import RestClient

TASK_NAME = "BasicSubmit"
TOKEN_ISSUER = "https://token-issuer.icecube.aq"
NAMESPACE = "osdf:///icecube/wipac"
MAX_SCOPES = 25


def scope_dir(path):
    """IceProd's cut of a path to the directory a storage scope names."""
    if "$" in path:
        return path[:path.index("$")].rsplit("/", 1)[0] or "/"
    found = re.search(r"/\d+-\d+(?=/|$)", path)
    if found:
        return path[:found.start()] or "/"
    dated = re.match(r"^(.*/IceCube/20\d\d/filtered/.*?/[01]\d\d\d)(?=/|$)", path)
    if dated:
        return dated.group(1)
    return os.path.dirname(path) or "/"


def token_scopes(jobs, extra):
    """As IceProd's basic_submit: storage.read for inputs, storage.modify for outputs, on the
    OSDF namespace; --scope adds more. Refused above 25 scopes."""
    scopes = set(extra or [])
    for inputs, output in jobs:
        for url, verb in [(u, "storage.read") for u in inputs] + [(output, "storage.modify")]:
            if url.startswith(NAMESPACE + "/"):
                scopes.add(f"{verb}:{scope_dir(url[len(NAMESPACE):])}")
    if len(scopes) > MAX_SCOPES:
        raise ValueError(f"{len(scopes)} scopes are too many (at most {MAX_SCOPES}): use --scope with a "
                         "common parent directory")
    return {TOKEN_ISSUER: " ".join(sorted(scopes))} if scopes else {}


def convert_path(path):
    if "://" in path:
        return path
    path = os.path.abspath(path)
    if not path.startswith("/data/"):
        raise ValueError(f"local paths must be under /data (or be URLs): {path}")
    return "osdf:///icecube/wipac" + path


def read_files(filename):
    jobs = []
    with open(filename) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise ValueError(f"need input(s) and an output on each line: {line!r}")
            jobs.append(([convert_path(p) for p in parts[:-1]], convert_path(parts[-1])))
    return jobs


def make_config(args, jobs=()):
    requirements = {"memory": args.request_memory}
    if args.request_cpus:
        requirements["cpu"] = args.request_cpus
    if args.request_gpus:
        requirements["gpu"] = args.request_gpus
    module = {"name": "main", "src": args.script, "args": args.args, "env_shell": args.env_shell or ""}
    return {
        "version": 3.1,
        "description": args.description,
        "tasks": [{
            "name": TASK_NAME,
            "task_files": True,
            "requirements": requirements,
            "token_scopes": token_scopes(jobs, args.scope),
            "trays": [{"name": "main", "modules": [module]}],
        }],
    }


def wait_for_message(rc, action, message_id, poll):
    while True:
        ret = rc.request_seq("GET", f"/actions/{action}/{message_id}")
        if ret["status"] == "complete":
            return ret
        if ret["status"] == "error":
            raise RuntimeError(f"{action} failed: {ret.get('error_message', ret)}")
        time.sleep(poll)


def submit(rc, args, jobs):
    config = make_config(args, jobs)
    ret = rc.request_seq("POST", "/actions/submit", {
        "config": json.dumps(config),
        "description": args.description,
        "jobs_submitted": len(jobs),
        "group": args.group,
        "extra_submit_fields": json.dumps({"status": "suspended"}),
    })
    logging.info("submit message %s", ret["result"])
    ret = wait_for_message(rc, "submit", ret["result"], args.poll)
    dataset_id = ret["payload"]["dataset_id"]
    logging.info("dataset_id %s", dataset_id)

    ret = rc.request_seq("POST", "/actions/materialization", {"dataset_id": dataset_id, "num": len(jobs)})
    wait_for_message(rc, "materialization", ret["result"], args.poll)

    try:
        for job_index, (inputs, output) in enumerate(jobs):
            for filename in inputs:
                rc.request_seq("POST", f"/datasets/{dataset_id}/files", {
                    "filename": filename, "movement": "input", "job_index": job_index, "task_name": TASK_NAME})
            rc.request_seq("POST", f"/datasets/{dataset_id}/files", {
                "filename": output, "movement": "output", "job_index": job_index, "task_name": TASK_NAME})
        rc.request_seq("PUT", f"/datasets/{dataset_id}/status", {"status": "processing"})
    except Exception:
        # IceProd tries "failed" here, which is not a dataset status; suspended is
        rc.request_seq("PUT", f"/datasets/{dataset_id}/status", {"status": "suspended"})
        raise
    ret = rc.request_seq("GET", f"/datasets/{dataset_id}")
    return dataset_id, ret["dataset"]


def main(argv=None):
    parser = argparse.ArgumentParser(description="run a script over many files: one job per line of FILES")
    parser.add_argument("script", help="script to run (path or URL)")
    parser.add_argument("args", help="script arguments, e.g. '$(input) $(output)'")
    parser.add_argument("files", help="file with one job per line: input(s) then output")
    parser.add_argument("--description", default="basic submit")
    parser.add_argument("--group", default="users", choices=["users", "simprod", "filtering"])
    parser.add_argument("--env_shell", default=None, help="env shell to load (e.g. a CVMFS icetray-env)")
    parser.add_argument("--request_memory", type=float, default=1.0, help="GB")
    parser.add_argument("--request_cpus", type=int, default=1)
    parser.add_argument("--request_gpus", type=int, default=0)
    parser.add_argument("--scope", action="append", default=[],
                        help="a storage scope the jobs need beyond those worked out from FILES (repeatable)")
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between status polls (IceProd: 10)")
    parser.add_argument("--log_level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(message)s")

    address = os.environ.get("FRAZIL_URL", "http://127.0.0.1:8080")
    token = os.environ.get("FRAZIL_TOKEN")
    if not token:
        print("basic_submit_rest: set FRAZIL_TOKEN (frazil token create --user NAME)", file=sys.stderr)
        return 2
    try:
        jobs = read_files(args.files)
    except (OSError, ValueError) as exc:
        print(f"basic_submit_rest: {args.files}: {exc}", file=sys.stderr)
        return 2
    rc = RestClient(address, token)
    try:
        dataset_id, number = submit(rc, args, jobs)
    except requests.HTTPError as exc:
        try:
            message = exc.response.json()["error"]
        except (ValueError, KeyError, TypeError, AttributeError):
            message = str(exc)
        print(f"basic_submit_rest: {exc.request.method} {exc.request.url}: {message}", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError) as exc:
        print(f"basic_submit_rest: {exc}", file=sys.stderr)
        return 1
    print(f"Dataset {number} submitted ({dataset_id}) with {len(jobs)} jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
