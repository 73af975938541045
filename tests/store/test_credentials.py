"""Contract: stored credentials (both backends). Secrets are opaque encrypted text here."""
from __future__ import annotations

import pytest

from server.store import Credential, InvalidArgumentError, Store


def _cred(owner: str = "alice", url: str = "https://osdf.example/icecube", **fields) -> Credential:
    values = dict(owner_kind="user", owner=owner, url=url, type="oauth", secret="gAAAA-opaque-1",
                  scope="storage.read:/data", expiration=1000.0, refreshable=True, created="2026-01-01T00:00:00")
    values.update(fields)
    return Credential(**values)


async def test_put_get_list_delete(store: Store) -> None:
    assert await store.put_credential(_cred())
    assert not await store.put_credential(_cred(scope="storage.modify:/data"))  # replaced, not added
    got = await store.get_credential("user", "alice", "https://osdf.example/icecube")
    assert got is not None and got.scope == "storage.modify:/data" and got.secret == "gAAAA-opaque-1"
    assert "secret" not in got.to_doc() and got.to_doc()["refreshable"] is True
    await store.put_credential(_cred(url="https://s3.example", type="s3", buckets=["b1", "b2"], refreshable=False,
                                     expiration=None))
    await store.put_credential(_cred(owner="bob"))
    await store.put_credential(_cred(owner="simprod", owner_kind="group"))
    listed = await store.list_credentials("user", ["alice", "bob"])
    assert [(c.owner, c.url) for c in listed] == [("alice", "https://osdf.example/icecube"),
                                                  ("alice", "https://s3.example"),
                                                  ("bob", "https://osdf.example/icecube")]
    assert listed[1].buckets == ["b1", "b2"] and listed[1].expiration is None
    assert [c.owner for c in await store.list_credentials("group", ["simprod"])] == ["simprod"]
    assert await store.list_credentials("user", []) == []
    assert await store.delete_credentials("user", "alice", "https://s3.example") == 1
    assert await store.delete_credentials("user", "alice") == 1
    assert await store.delete_credentials("user", "alice") == 0
    assert await store.get_credential("user", "alice", "https://osdf.example/icecube") is None


async def test_bad_credentials_are_refused(store: Store) -> None:
    with pytest.raises(InvalidArgumentError, match="owner_kind"):
        await store.put_credential(_cred(owner_kind="planet"))
    with pytest.raises(InvalidArgumentError, match="type"):
        await store.put_credential(_cred(type="password"))
    with pytest.raises(InvalidArgumentError, match="owner and a url"):
        await store.put_credential(_cred(url=""))


async def test_refresh_selection_and_recording(store: Store) -> None:
    await store.put_credential(_cred(owner="soon", expiration=100.0))
    await store.put_credential(_cred(owner="later", expiration=5000.0))
    await store.put_credential(_cred(owner="stale", expiration=50.0, last_use=1.0))
    await store.put_credential(_cred(owner="plain", expiration=10.0, refreshable=False))
    due = await store.credentials_to_refresh(expiring_before=1000.0, used_after=10.0)
    assert [c.owner for c in due] == ["soon"]
    soon = due[0]
    assert await store.record_refresh(soon, secret=None, expiration=None, when=5.0, error="issuer said no")
    failed = await store.get_credential("user", "soon", soon.url)
    assert failed and failed.refresh_error == "issuer said no" and failed.secret == soon.secret
    assert await store.record_refresh(soon, secret="gAAAA-new", expiration=2000.0, when=6.0)
    fresh = await store.get_credential("user", "soon", soon.url)
    assert fresh and (fresh.secret, fresh.expiration, fresh.last_refresh, fresh.refresh_error) == \
        ("gAAAA-new", 2000.0, 6.0, "")
    # the old copy no longer matches the stored secret: a late refresh must not overwrite
    assert not await store.record_refresh(soon, secret="gAAAA-late", expiration=1.0, when=7.0)
    await store.touch_credential(fresh, 42.0)
    again = await store.get_credential("user", "soon", soon.url)
    assert again and again.last_use == 42.0 and again.secret == "gAAAA-new"
