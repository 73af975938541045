"""Contract: quarantined hosts and sites (add once while active, list, lift)."""
from __future__ import annotations

import pytest

from server.store import InvalidArgumentError, Store

LATER = "9999-01-01T00:00:00.000000"
EARLIER = "2000-01-01T00:00:00.000000"


async def test_add_list_and_lift(store: Store) -> None:
    host, new = await store.add_quarantine("host", "node-7", "failed 6 tasks", LATER)
    assert new and host.kind == "host" and host.name == "node-7" and host.reason == "failed 6 tasks"
    again, new = await store.add_quarantine("host", "node-7", "failed 9 tasks", LATER)
    assert not new and again == host  # one active quarantine per host
    site, new = await store.add_quarantine("site", "WIPAC", "failed 30 tasks", LATER)
    assert new
    old, new = await store.add_quarantine("host", "node-8", "long ago", EARLIER)  # already expired
    assert new and not old.active(host.created)
    assert [q.quarantine_id for q in await store.list_quarantines()] == [old.quarantine_id, site.quarantine_id,
                                                                          host.quarantine_id]
    active = await store.list_quarantines(active_at=host.created)
    assert [q.name for q in active] == ["WIPAC", "node-7"]
    assert len(await store.list_quarantines(limit=1)) == 1
    lifted = await store.lift_quarantine(host.quarantine_id, "root")
    assert lifted is not None and lifted.lifted and lifted.lifted_by == "root" and not lifted.active(host.created)
    assert (await store.lift_quarantine(host.quarantine_id, "other")) == lifted  # lifting twice changes nothing
    assert await store.lift_quarantine("missing", "root") is None
    assert [q.name for q in await store.list_quarantines(active_at=host.created)] == ["WIPAC"]
    renewed, new = await store.add_quarantine("host", "node-7", "again", LATER)  # lifted: a new one may start
    assert new and renewed.quarantine_id != host.quarantine_id


async def test_bad_arguments(store: Store) -> None:
    with pytest.raises(InvalidArgumentError):
        await store.add_quarantine("planet", "earth", "x", LATER)
    with pytest.raises(InvalidArgumentError):
        await store.add_quarantine("host", " ", "x", LATER)
    with pytest.raises(InvalidArgumentError):
        await store.list_quarantines(limit=0)
