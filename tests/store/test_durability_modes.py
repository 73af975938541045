"""The store's durability setting (issue 11 item 10): ``durable=True`` (the
default) makes SQLite commit with ``synchronous=FULL`` and MongoDB write with
``w="majority", j=True``; ``durable=False`` is the opt-out. The order of
fsync and reply on a real server is in tests/server/test_durable_commit.py."""
from __future__ import annotations

import pytest

from server.store import open_store
from server.store.mongo.store import durable_write_options
from server.store.sqlite.connection import connect

SQLITE_FULL, SQLITE_NORMAL = 2, 1


@pytest.mark.parametrize("durable", [True, False])
async def test_the_store_honours_the_setting(store_url: str, backend: str, durable: bool) -> None:
    store = await open_store(store_url, durable=durable)
    try:
        if backend == "sqlite":
            mode = await store.db.write(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
            assert mode == (SQLITE_FULL if durable else SQLITE_NORMAL)
        else:
            concern = store._client.write_concern.document
            if durable:
                assert concern == {"w": "majority", "j": True}
            else:
                assert concern == {}
            # the writes a pilot's report makes go through with that concern
            await store.create_user("durable-check")
            assert await store.get_user("durable-check") is not None
    finally:
        await store.close()


async def test_durable_is_the_default(store_url: str, backend: str) -> None:
    store = await open_store(store_url)
    try:
        if backend == "sqlite":
            assert await store.db.write(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) == SQLITE_FULL
        else:
            assert store._client.write_concern.document == {"w": "majority", "j": True}
    finally:
        await store.close()


def test_a_url_write_concern_wins() -> None:
    assert durable_write_options("mongodb://h/db") == {"w": "majority", "journal": True}
    assert durable_write_options("mongodb://h/db?w=1") == {"journal": True}
    assert durable_write_options("mongodb://h/db?replicaSet=rs&j=false") == {"w": "majority"}


def test_connect_defaults_to_full(tmp_path) -> None:
    conn = connect(str(tmp_path / "x.db"))
    try:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == SQLITE_FULL
    finally:
        conn.close()


async def test_storage_pressure(store_url: str, backend: str) -> None:
    """What the materializer's storage brake reads (server/scheduling/backlog.py)."""
    store = await open_store(store_url)
    try:
        pressure = await store.storage_pressure()
        if backend == "sqlite":
            assert pressure.free_bytes and pressure.free_bytes > 0
            assert pressure.log_limit == 256 * 1024 * 1024 and pressure.log_bytes is not None
        else:  # the database server's disks are not the store's to see
            assert (pressure.free_bytes, pressure.log_bytes, pressure.log_limit) == (None, None, None)
    finally:
        await store.close()
