"""Datasets as users name and create them: by id or number, and a new
dataset with IceProd's default rights."""
from __future__ import annotations

from typing import Any

from server.auth import Identity, default_rights
from server.errors import Refused
from server.store import Dataset, InvalidArgumentError, NewDataset, NotFoundError, Store

MAX_NUMBER_DIGITS = 18
"""A longer number names no dataset, and would overflow the database's integers."""


async def dataset_by_key(store: Store, key: str) -> Dataset | None:
    """The dataset whose number (all digits) or id is ``key``; None when there is none.

    The API's paths, the scratch store and the website all accept both."""
    dataset = None
    if key.isdigit() and len(key) <= MAX_NUMBER_DIGITS:
        dataset = await store.get_dataset_by_number(int(key))
    return dataset if dataset is not None else await store.get_dataset(key)


async def existing_dataset(store: Store, key: str) -> Dataset:
    """:func:`dataset_by_key`, or NotFoundError("Dataset not found")."""
    dataset = await dataset_by_key(store, key)
    if dataset is None:
        raise NotFoundError("Dataset not found")
    return dataset


async def create_dataset(store: Store, identity: Identity, fields: dict[str, Any]) -> Dataset:
    """``POST /datasets``: a dataset owned by the caller (an admin or a system
    token may name another ``username``, as in IceProd) in one of the caller's groups, readable by
    ``auth_groups_read`` (default: everyone in ``users``)."""
    if fields["tasks_submitted"] != fields["jobs_submitted"] * fields["tasks_per_job"]:
        raise InvalidArgumentError(
            "tasks_submitted must equal jobs_submitted * tasks_per_job "
            f"({fields['jobs_submitted']} * {fields['tasks_per_job']}), got {fields['tasks_submitted']}")
    username = fields.get("username", identity.username) if identity.acts_for_anyone else identity.username
    if not identity.acts_for_anyone and fields["group"] not in identity.groups:
        raise Refused(403, f"group {fields['group']!r} is not one of your groups "
                           f"({', '.join(sorted(identity.groups))})")
    dataset = await store.create_dataset(NewDataset(
        description=fields["description"], jobs_submitted=fields["jobs_submitted"],
        tasks_per_job=fields["tasks_per_job"], tasks_submitted=fields["tasks_submitted"], group=fields["group"],
        username=username, priority=float(fields.get("priority", 0.5)), debug=fields.get("debug", False),
        jobs_immutable=fields.get("jobs_immutable", False), always_active=fields.get("always_active", False),
        status=fields.get("status", "processing")))
    await store.set_dataset_rights(dataset.dataset_id,
                                   default_rights(username, fields["group"], fields.get("auth_groups_read")))
    await store.ensure_user(username)
    return dataset
