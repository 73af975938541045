"""Per-dataset read/write rights (reference §4.2), decided in bulk.

Admins and ``system`` (IceProd's services) bypass rights, as IceProd's
``attr_auth`` lets them; pilot tokens never act on datasets through user
routes. A user may read/write a dataset when their name is listed or
one of their groups is.
"""
from __future__ import annotations

from typing import Sequence

from server.auth.identity import Identity
from server.store import ActionMessage, DatasetRights, Store

DEFAULT_READ_GROUPS = ("users",)


def default_rights(username: str, group: str, read_groups: Sequence[str] | None = None) -> DatasetRights:
    """IceProd's rights for a new dataset: everyone in ``users`` (or the given
    groups) reads; the owner, the owning group (unless it is ``users``) and
    admins write."""
    readers = {"admin", group, *(DEFAULT_READ_GROUPS if read_groups is None else read_groups)}
    writers = {"admin"} if group == "users" else {"admin", group}
    return DatasetRights(read_groups=sorted(readers), write_groups=sorted(writers),
                         read_users=[username], write_users=[username])


def allowed(identity: Identity, rights: DatasetRights | None, right: str) -> bool:
    if identity.acts_for_anyone:
        return True
    if rights is None or identity.is_pilot:
        return False
    users = rights.write_users if right == "write" else rights.read_users
    groups = rights.write_groups if right == "write" else rights.read_groups
    if right == "read":  # writers can always read
        users = [*users, *rights.write_users]
        groups = [*groups, *rights.write_groups]
    return identity.username in users or bool(identity.groups.intersection(groups))


async def may(store: Store, identity: Identity, dataset_id: str, right: str) -> bool:
    """Whether ``identity`` has ``right`` ("read" | "write") on the dataset;
    admins and system without asking the store. The one rights check of the
    API, the website and the actions."""
    if identity.acts_for_anyone:
        return True
    return allowed(identity, (await store.rights_for([dataset_id])).get(dataset_id), right)


async def readable_ids(store: Store, identity: Identity, dataset_ids: Sequence[str]) -> set[str]:
    """Which of these datasets the caller may read: ONE rights lookup for all
    of them (IceProd asked once per dataset)."""
    if identity.acts_for_anyone:
        return set(dataset_ids)
    rights = await store.rights_for(list(dataset_ids))
    return {d for d in dataset_ids if allowed(identity, rights.get(d), "read")}


async def may_read_action(store: Store, identity: Identity, message: ActionMessage) -> bool:
    """Who may follow a queued action (its payload holds the submitted config,
    user name and group): admins, the user who asked, readers of the dataset
    it concerns, and, for a submit whose dataset is not made yet, members of
    the group it is submitted for (they read the dataset once it exists);
    system tokens, as IceProd's services read every message."""
    if identity.acts_for_anyone:
        return True
    if identity.is_pilot:
        return False
    payload = message.payload
    if identity.username in (payload.get("requested_by"), payload.get("username")):
        return True
    dataset_id = message.dataset_id or payload.get("dataset_id")
    if isinstance(dataset_id, str) and dataset_id:
        return await may(store, identity, dataset_id, "read")
    group = payload.get("group")
    return message.action == "submit" and isinstance(group, str) and group in identity.groups
