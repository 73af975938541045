"""What happens to pilots: registration, heartbeats, departure, and the tasks
a departing or lost pilot still holds (DESIGN.md §3.2, §3.5).

A heartbeat is also how a pilot learns which of its tasks it still holds:
the reply lists the task ids whose leases were renewed, so a pilot that was
slow (its tasks were reaped and handed to someone else) abandons the others
instead of finishing work nobody will accept.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.protocol import Reason
from server.errors import Refused
from server.settings import Settings
from server.store import AttemptResult, FailureClass, NewPilot, Pilot, RetryPolicy, Store


def retry_policy(settings: Settings) -> RetryPolicy:
    """The failure budgets and escalation caps every report path uses."""
    return RetryPolicy(max_retries=settings.max_retries, max_infra_failures=settings.max_infra_failures,
                       caps={"memory": settings.max_memory_gb, "disk": settings.max_disk_gb,
                             "time": settings.max_time_hours},
                       retry_delay=settings.retry_delay_seconds, retry_delay_max=settings.retry_delay_max_seconds)


async def revive(store: Store, pilot: Pilot) -> None:
    """A pilot marked lost that calls in was only silent (a network cut): it
    is evidently alive, so it is active again."""
    if pilot.state == "lost":
        await store.set_pilot_state(pilot.pilot_id, "active")
        pilot.state = "active"


async def release_pilot_tasks(store: Store, settings: Settings, task_ids: list[str], pilot_id: str,
                              reason: str) -> list[str]:
    """Give back tasks a departing pilot still holds, as infrastructure
    failures, so they are retried at once instead of after the lease."""
    released = []
    for task_id in task_ids:
        task = await store.get_task(task_id)
        if task is None or task.status != "processing" or task.pilot_id != pilot_id or not task.instance_id:
            continue
        result = AttemptResult(failure_class=FailureClass.INFRA, kind="pilot-lost", reason=reason)
        outcome = await store.reset(task_id, task.instance_id, result, retry_policy(settings))
        if outcome.applied:
            released.append(task_id)
            await store.rollup_jobs([task.job_id])
            await store.rollup_dataset(task.dataset_id)
    return released


def unknown_pilot(pilot_id: str) -> Refused:
    return Refused(404, f"pilot {pilot_id} not found: register again with POST /pilots",
                   reason=Reason.UNKNOWN_PILOT)


async def register(store: Store, new: NewPilot, pilot_id: str | None) -> str:
    """Record a pilot; a retried registration (clients retry POSTs) with a
    known ``pilot_id`` answers that id again instead of failing."""
    if pilot_id and await store.get_pilot(pilot_id) is not None:
        return pilot_id
    if pilot_id:
        new.pilot_id = pilot_id
    return await store.register_pilot(new)


@dataclass
class Heartbeat:
    drain: bool
    tasks: list[str]
    """The tasks whose leases were renewed: the ones the pilot still holds."""


async def heartbeat(store: Store, settings: Settings, pilot_id: str, *, drain: bool | None,
                    free: dict[str, Any] | None, tasks: list[str]) -> Heartbeat:
    if drain is not None and not await store.set_pilot_drain(pilot_id, drain):
        raise unknown_pilot(pilot_id)
    reply = await store.pilot_heartbeat(pilot_id, free, tasks)
    if not reply.found:
        raise unknown_pilot(pilot_id)
    pilot = await store.get_pilot(pilot_id)
    if pilot is not None:
        await revive(store, pilot)
    held = await store.renew_leases(pilot_id, tasks, settings.lease_seconds) if tasks else []
    return Heartbeat(reply.drain, held)


async def depart(store: Store, settings: Settings, pilot_id: str) -> list[str]:
    """A pilot exits: the tasks it still holds go back to the queue at once."""
    pilot = await store.get_pilot(pilot_id)
    if pilot is None:
        raise unknown_pilot(pilot_id)
    released = await release_pilot_tasks(store, settings, list(pilot.tasks), pilot_id,
                                         f"pilot {pilot_id} exited while holding the task")
    await store.delete_pilot(pilot_id)
    return released
