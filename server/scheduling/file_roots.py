"""Where ``file://`` outputs may go (issue 11): the roots a pilot is given in
its claim reply and the check of static output paths at submit.

Pilots of the local provider (site ``local_site``) may write below the data
directory and the ``local_file_roots`` setting; every other (grid) pilot
below ``grid_file_roots`` only (none by default). The server's own files in
the data dir (signing key, database, credentials key, pilot folders) are
denied whatever the roots. The pilot enforces this at run time
(common/transfer/local.py: a refusal is a ``config`` failure, physics class,
not retried); a static output path (no macro) that no pilot may write is
refused at submit.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

from common.transfer.local import escape_reason
from server.settings import Settings
from server.store import InvalidArgumentError, sqlite_path_from_url

FILE_PREFIXES = ("file://", "/")


def _split(value: str) -> list[str]:
    return [os.path.abspath(part.strip()) for part in value.split(",") if part.strip()]


def file_roots(settings: Settings, site: str | None) -> list[str]:
    """The roots for a pilot of ``site``."""
    if site == settings.local_site:
        return [os.path.abspath(settings.data_dir), *_split(settings.local_file_roots)]
    return _split(settings.grid_file_roots)


def file_denied(settings: Settings) -> list[str]:
    """The server's own paths, whatever the roots."""
    data = os.path.abspath(settings.data_dir)
    paths = [settings.path(settings.auth_key_file, "auth.key"), os.path.join(data, "pilots")]
    if settings.credentials_key_file:
        paths.append(settings.path(settings.credentials_key_file, "credentials.key"))
    if settings.db.startswith("sqlite:"):
        try:
            db = os.path.abspath(sqlite_path_from_url(settings.db))
        except InvalidArgumentError:
            db = ""
        if db:
            paths += [db, db + "-wal", db + "-shm", db + "-journal"]
    return sorted({os.path.abspath(str(p)) for p in paths})


def _entries(config: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every data entry of the config with where it is (for the message)."""
    steering = config.get("steering") or {}
    for i, entry in enumerate(steering.get("data") or [] if isinstance(steering, dict) else []):
        yield f"steering.data[{i}]", entry
    for t, task in enumerate(config.get("tasks") or []):
        if not isinstance(task, dict):
            continue
        for i, entry in enumerate(task.get("data") or []):
            yield f"tasks[{t}].data[{i}]", entry
        for r, tray in enumerate(task.get("trays") or []):
            if not isinstance(tray, dict):
                continue
            for i, entry in enumerate(tray.get("data") or []):
                yield f"tasks[{t}].trays[{r}].data[{i}]", entry
            for m, module in enumerate(tray.get("modules") or []):
                if isinstance(module, dict):
                    for i, entry in enumerate(module.get("data") or []):
                        yield f"tasks[{t}].trays[{r}].modules[{m}].data[{i}]", entry


def _url(entry: dict[str, Any], options: dict[str, Any]) -> Any:
    """The entry's URL as the plan builds it (common/plan/build.py): a
    relative ``remote`` joins the ``data_url`` (or its type's) option."""
    remote = entry.get("remote") or entry.get("local")
    if not isinstance(remote, str) or remote.startswith("/") or "://" in remote:
        return remote
    dtype = str(entry.get("type") or "permanent")
    base = options.get("data_url" if dtype == "permanent" else dtype) if isinstance(options, dict) else None
    return f"{base.rstrip('/')}/{remote}" if isinstance(base, str) and base else remote


_CLAIM_FIELDS: dict[tuple[int, bool], dict[str, list[str]]] = {}


def claim_fields(settings: Settings, site: str | None) -> dict[str, list[str]]:
    """``file_roots`` and ``file_denied`` of a claim reply (computed once per
    settings object and kind of pilot: the claim path is hot)."""
    local = site == settings.local_site
    key = (id(settings), local)
    fields = _CLAIM_FIELDS.get(key)
    if fields is None or len(_CLAIM_FIELDS) > 64:
        if len(_CLAIM_FIELDS) > 64:
            _CLAIM_FIELDS.clear()
        fields = {"file_roots": file_roots(settings, settings.local_site if local else None),
                  "file_denied": file_denied(settings)}
        _CLAIM_FIELDS[key] = fields
    return fields


def static_output_problems(config: dict[str, Any], settings: Settings) -> list[str]:
    """Output entries whose file:// URL has no macro and that no pilot may
    write (neither a local nor a grid pilot), one message each."""
    allowed_local = file_roots(settings, settings.local_site)
    allowed_grid = file_roots(settings, None)
    denied = file_denied(settings)
    problems = []
    for where, entry in _entries(config):
        if not isinstance(entry, dict) or str(entry.get("movement") or "input") not in ("output", "both"):
            continue
        remote = _url(entry, config.get("options") or {})
        if not isinstance(remote, str) or not remote.startswith(FILE_PREFIXES) or "$" in remote:
            continue  # not a file:// output, or not static (checked by the pilot at run time)
        path = remote[len("file://"):] if remote.startswith("file://") else remote
        if path.startswith("localhost/"):
            path = path[len("localhost"):]
        if not path.startswith("/"):
            continue  # another host or malformed: the transfer refuses it with its own message
        reasons = [escape_reason(path, roots, denied) for roots in (allowed_local, allowed_grid)]
        if all(reasons):
            problems.append(f"{where}: file:// output {remote[:200]!r} may not be written: {reasons[0]}")
    return problems
