"""Contract: pilots, users, groups, usage, loop leases."""
from __future__ import annotations

import asyncio
import time

import pytest

from server.store import ConflictError, DatasetRights, InvalidArgumentError, NewPilot, Revocation, Store, Usage, User


async def test_pilots(store: Store) -> None:
    p1 = await store.register_pilot(NewPilot({"cpu": 8, "gpu": 1, "memory": 32}, site="WIPAC", hostname="n1",
                                             os=["el9"], provider="htcondor", provider_job_id="12.0"))
    p2 = await store.register_pilot(NewPilot({"cpu": 1}, site="OSG", hostname="n2", provider="local"))
    with pytest.raises(ConflictError):
        await store.register_pilot(NewPilot({"cpu": 1}, pilot_id=p1))
    pilot = await store.get_pilot(p1)
    assert pilot and pilot.state == "active" and not pilot.drain and pilot.free == {"cpu": 8, "gpu": 1, "memory": 32}
    assert (pilot.site, pilot.hostname, pilot.os, pilot.provider_job_id) == ("WIPAC", "n1", ["el9"], "12.0")
    reply = await store.pilot_heartbeat(p1, {"cpu": 2, "gpu": 0, "memory": 8}, ["t1", "t2"])
    assert reply.found and not reply.drain
    assert await store.set_pilot_drain(p1)
    reply = await store.pilot_heartbeat(p1, None, ["t1"])
    assert reply.found and reply.drain
    pilot = await store.get_pilot(p1)
    assert pilot and pilot.tasks == ["t1"] and pilot.free == {"cpu": 2, "gpu": 0, "memory": 8}
    assert not (await store.pilot_heartbeat("missing", None, [])).found
    assert [p.pilot_id for p in await store.list_pilots(site="OSG")] == [p2]
    assert await store.mark_lost_pilots(time.time() + 60) == sorted([p1, p2])
    assert await store.mark_lost_pilots(time.time() + 60) == []
    assert [p.pilot_id for p in await store.list_pilots(state="lost")] == [p1, p2]
    assert await store.set_pilot_state(p2, "exited")
    with pytest.raises(InvalidArgumentError):
        await store.set_pilot_state(p2, "sleeping")
    assert await store.delete_pilot(p1) and not await store.delete_pilot(p1)
    assert await store.get_pilot(p1) is None


async def test_a_failing_call_among_concurrent_ones_fails_alone(store: Store) -> None:
    results = await asyncio.gather(*(store.create_user(name) for name in ["a", "b", "a", "c", "b", "d"]),
                                   return_exceptions=True)
    assert [type(r).__name__ for r in results].count("ConflictError") == 2
    assert sorted(u.username for u in await store.list_users()) == ["a", "b", "c", "d"]
    ds_results = await asyncio.gather(store.set_dataset_rights("x", DatasetRights()),
                                      store.create_group("g"), store.create_group("g"), return_exceptions=True)
    assert [type(r).__name__ for r in ds_results].count("ConflictError") == 1
    assert [g.name for g in await store.list_groups()] == ["g"]


async def test_users_and_groups(store: Store) -> None:
    alice = await store.create_user("alice")
    assert alice.priority == 0.5 and alice.user_id
    with pytest.raises(ConflictError):
        await store.create_user("alice")
    assert await store.ensure_user("alice") == alice
    bob = await store.ensure_user("bob")
    assert bob.username == "bob" and bob.priority == 0.5
    assert await store.set_user_priority("bob", 0.9)
    assert not await store.set_user_priority("nobody", 0.9)
    with pytest.raises(InvalidArgumentError, match="between 0 and 1"):
        await store.set_user_priority("bob", 1.5)
    assert await store.list_users() == [alice, User(bob.user_id, "bob", 0.9)]
    assert await store.delete_user("alice") and await store.get_user("alice") is None
    await store.create_group("simprod", 0.5)
    await store.create_group("admin", 1.0)
    with pytest.raises(ConflictError):
        await store.create_group("admin")
    assert await store.set_group_priority("simprod", 0.7)
    assert [(g.name, g.priority) for g in await store.list_groups()] == [("admin", 1.0), ("simprod", 0.7)]
    assert await store.delete_group("admin") and not await store.delete_group("admin")


async def test_usage_accounting(store: Store) -> None:
    await store.add_usage("alice", "simprod", 2.5)
    await store.add_usage("alice", "simprod", 1.5)
    await store.add_usage("bob", "simprod", 1.0)
    assert await store.list_usage() == [Usage("group", "simprod", 5.0), Usage("user", "alice", 4.0),
                                        Usage("user", "bob", 1.0)]
    with pytest.raises(InvalidArgumentError):
        await store.add_usage("bob", "simprod", -1)


async def test_loop_leases(store: Store) -> None:
    results = await asyncio.gather(*(store.acquire_lease("materialize", f"replica-{i}", 30) for i in range(8)))
    assert results.count(True) == 1
    winner = f"replica-{results.index(True)}"
    loser = "replica-x"
    assert await store.acquire_lease("materialize", winner, 30)  # renew own lease
    assert not await store.acquire_lease("materialize", loser, 30)
    assert await store.acquire_lease("queue", loser, 30)  # another loop is independent
    assert not await store.release_lease("materialize", loser)
    assert await store.release_lease("materialize", winner)
    assert await store.acquire_lease("materialize", loser, 0.2)
    await asyncio.sleep(0.3)  # expired: someone else may take it
    assert await store.acquire_lease("materialize", winner, 30)
    with pytest.raises(InvalidArgumentError):
        await store.acquire_lease("x", "y", 0)


async def test_token_revocations(store: Store) -> None:
    """One row per subject; the time only moves forward; ``deleted`` None keeps the mark."""
    assert await store.list_revocations() == []
    await store.revoke_tokens("user:bob", 100.0, True)
    await store.revoke_tokens("user:bob", 50.0)  # an older time (another replica's clock) never moves it back
    await store.revoke_tokens("token:abc", 10.0)
    found = {r.subject: r for r in await store.list_revocations()}
    assert found == {"user:bob": Revocation("user:bob", 100.0, True), "token:abc": Revocation("token:abc", 10.0, False)}
    await store.revoke_tokens("user:bob", 200.0, False)
    assert Revocation("user:bob", 200.0, False) in await store.list_revocations()
