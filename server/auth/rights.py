"""Per-dataset read/write rights (reference §4.2), decided in bulk.

Admins bypass rights; pilots (system tokens) never act on datasets through
user routes. A user may read/write a dataset when their name is listed or
one of their groups is.
"""
from __future__ import annotations

from typing import Sequence

from server.auth.identity import Identity
from server.store import DatasetRights

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
    if identity.is_admin:
        return True
    if rights is None or identity.is_pilot:
        return False
    users = rights.write_users if right == "write" else rights.read_users
    groups = rights.write_groups if right == "write" else rights.read_groups
    if right == "read":  # writers can always read
        users = [*users, *rights.write_users]
        groups = [*groups, *rights.write_groups]
    return identity.username in users or bool(identity.groups.intersection(groups))
