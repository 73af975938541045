"""The store interface is the sum of its role interfaces, each method in one
role, and docs/store.md lists every role's methods (so the table a newcomer
reads cannot drift from the code)."""
from __future__ import annotations

import inspect
import pathlib
import re

from server.store import Store, roles
from server.store.mongo.store import MongoStore
from server.store.sqlite.store import SQLiteStore

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "store.md"
ROLES = [getattr(roles, name) for name in roles.__all__]


def _methods(cls: type) -> set[str]:
    return {name for name, value in vars(cls).items() if not name.startswith("_") and callable(value)}


def test_every_store_method_belongs_to_exactly_one_role() -> None:
    seen: dict[str, str] = {}
    for role in ROLES:
        assert issubclass(Store, role), f"Store does not include {role.__name__}"
        for name in _methods(role):
            assert name not in seen, f"{name} is in both {seen[name]} and {role.__name__}"
            seen[name] = role.__name__
    own = _methods(Store) - {"close"}
    assert not own, f"methods defined on Store itself instead of a role: {sorted(own)}"
    public = {name for name in dir(Store) if not name.startswith("_") and inspect.isfunction(getattr(Store, name))}
    assert public - {"close"} == set(seen)


def test_both_backends_implement_every_role() -> None:
    for backend in (SQLiteStore, MongoStore):
        assert not backend.__abstractmethods__, f"{backend.__name__} misses {sorted(backend.__abstractmethods__)}"


def test_docs_table_lists_each_role_s_methods() -> None:
    text = DOC.read_text()
    for role in ROLES:
        rows = [line for line in text.splitlines() if line.startswith(f"| `{role.__name__}`")]
        assert len(rows) == 1, f"docs/store.md needs one row for {role.__name__} in the roles table"
        listed = set(re.findall(r"`(\w+)`", rows[0].split("|")[3]))
        assert listed == _methods(role), (
            f"docs/store.md row of {role.__name__}: missing {sorted(_methods(role) - listed)}, "
            f"not in the role {sorted(listed - _methods(role))}")
