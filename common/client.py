"""The small REST client shared by frazil's command-line clients.

It is wipac-rest-tools' ``RestClient`` (what IceProd scripts use), configured
from the environment: ``FRAZIL_URL`` and ``FRAZIL_TOKEN``, or
``FRAZIL_TOKEN_FILE`` naming a file that holds the token. Failures become a
:class:`CliError` with one clear line: the server's own error message for
4xx/5xx replies, the address for connection problems.
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Mapping

import requests
from rest_tools.client import RestClient

from common.cli_errors import CliError

ENV_URL = "FRAZIL_URL"
ENV_TOKEN = "FRAZIL_TOKEN"
ENV_TOKEN_FILE = "FRAZIL_TOKEN_FILE"


def token_from_env(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    token = env.get(ENV_TOKEN, "").strip()
    if token:
        return token
    token_file = env.get(ENV_TOKEN_FILE, "").strip()
    if not token_file:
        raise CliError(f"no token: set {ENV_TOKEN} or {ENV_TOKEN_FILE} "
                       "(make one with 'frazil token create --user NAME')")
    try:
        token = pathlib.Path(token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CliError(f"{ENV_TOKEN_FILE}={token_file}: cannot read: {exc.strerror or exc}") from None
    if not token:
        raise CliError(f"{ENV_TOKEN_FILE}={token_file}: the file is empty")
    return token


def url_from_env(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    url = env.get(ENV_URL, "").strip()
    if not url:
        raise CliError(f"no server address: set {ENV_URL} (e.g. http://127.0.0.1:8080)")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"{ENV_URL}={url!r}: expected an http:// or https:// address")
    return url.rstrip("/")


def client_from_env(environ: Mapping[str, str] | None = None, *, timeout: float = 60.0,
                    retries: int = 3) -> RestClient:
    """A RestClient for the server named by the environment (CliError if unset)."""
    return RestClient(url_from_env(environ), token_from_env(environ), timeout=timeout, retries=retries)


def server_message(exc: requests.HTTPError) -> str:
    """``{"code", "error"}`` replies give their error text; anything else its status."""
    response = exc.response
    if response is None:
        return str(exc)
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    return f"{error} (HTTP {response.status_code})" if error else f"HTTP {response.status_code} {response.reason}"


def call(client: RestClient, method: str, path: str, args: dict[str, Any] | None = None, *,
         missing_ok: bool = False) -> Any:
    """``client.request_seq`` with every failure turned into one CliError line
    (``missing_ok``: a 404 is None instead)."""
    try:
        return client.request_seq(method, path, args)
    except requests.HTTPError as exc:
        if missing_ok and exc.response is not None and exc.response.status_code == 404:
            return None
        raise CliError(f"{method} {path}: {server_message(exc)}", exit_code=1) from None
    except requests.ConnectionError:
        raise CliError(f"cannot reach the frazil server at {client.address}", exit_code=1) from None
    except requests.Timeout:
        raise CliError(f"the frazil server at {client.address} did not answer in time", exit_code=1) from None
    except (requests.RequestException, json.JSONDecodeError) as exc:
        raise CliError(f"{method} {path}: {exc}", exit_code=1) from None


def resolve_dataset(client: RestClient, ref: str) -> dict[str, Any]:
    """A dataset by its number (``22634``) or its id; CliError naming what was tried."""
    ref = ref.strip()
    if ref.isdigit():
        datasets = call(client, "GET", "/datasets", {"keys": "dataset|dataset_id"})
        for dataset_id, doc in datasets.items():
            if doc.get("dataset") == int(ref):
                return call(client, "GET", f"/datasets/{dataset_id}")
        raise CliError(f"no dataset number {ref} (or you may not read it)", exit_code=1)
    return call(client, "GET", f"/datasets/{ref}")


def resolve_task_id(client: RestClient, dataset_id: str, ref: str) -> str:
    """A task id from a task id or ``JOB_INDEX/NAME`` (``0/generation``)."""
    if "/" not in ref:
        return ref
    job, _, name = ref.partition("/")
    if not job.isdigit() or not name:
        raise CliError(f"task {ref!r}: expected a task id or JOB_INDEX/NAME", exit_code=2)
    tasks = call(client, "GET", f"/datasets/{dataset_id}/tasks", {"job_index": job, "name": name, "keys": "task_id"})
    if not tasks:
        raise CliError(f"no task {name!r} in job {job}", exit_code=1)
    return next(iter(tasks))
