"""Task logs: stored logs (IceProd's ``/logs``) and live logs a pilot streams
while an attempt runs (DESIGN.md §3.5).

A live log is fenced by the claim's ``instance_id``, like every report: a
pilot that lost its task cannot write into the logs of the attempt that
replaced it.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

from common.protocol import Reason
from server.errors import Refused
from server.store import InvalidArgumentError, Log, NewLog, NotFoundError, Store, Task


@dataclasses.dataclass
class StreamedLog:
    task_id: str
    attempt: int | None
    size: int


class LogIndex:
    """What an append needs to know about a log (its task, attempt, size),
    kept in memory: reading the log back for every chunk would make
    streaming cost grow with the log. A miss (another replica created the
    log, or a restart) reads it once. Logs stop growing at ``max_chars``."""

    def __init__(self, max_chars: int = 64 * 1024 * 1024, max_entries: int = 100_000):
        self.max_chars = max_chars
        self.max_entries = max_entries
        self._logs: OrderedDict[str, StreamedLog] = OrderedDict()

    def remember(self, log_id: str, entry: StreamedLog) -> None:
        self._logs[log_id] = entry
        self._logs.move_to_end(log_id)
        while len(self._logs) > self.max_entries:
            self._logs.popitem(last=False)

    async def lookup(self, store: Store, log_id: str) -> StreamedLog:
        entry = self._logs.get(log_id)
        if entry is None:
            log = await log_or_404(store, log_id)
            entry = StreamedLog(log.task_id, log.attempt, log.size or len(log.data))
            self.remember(log_id, entry)
        return entry

    def forget(self, log_id: str) -> None:
        self._logs.pop(log_id, None)


async def task_or_404(store: Store, task_id: str, dataset_id: str | None = None) -> Task:
    task = await store.get_task(task_id)
    if task is None or (dataset_id is not None and task.dataset_id != dataset_id):
        raise NotFoundError(f"task {task_id} not found" + (f" in dataset {dataset_id}" if dataset_id else ""))
    return task


async def log_or_404(store: Store, log_id: str, dataset_id: str | None = None) -> Log:
    log = await store.get_log(log_id)
    if log is None or (dataset_id is not None and log.dataset_id != dataset_id):
        raise NotFoundError(f"log {log_id} not found")
    return log


async def _attempt_of(store: Store, task: Task, instance_id: str | None, attempt: int | None) -> int | None:
    """Which attempt a log belongs to: named, found by its instance_id, or the latest."""
    if attempt is not None:
        return attempt
    if instance_id:
        for record in await store.get_attempts(task.task_id):
            if record.instance_id == instance_id:
                return record.attempt
        raise InvalidArgumentError(
            f"key 'instance_id': no attempt of task {task.task_id} has instance_id {instance_id!r}")
    return task.attempts or None


async def add_log(store: Store, body: dict[str, Any], dataset_id: str | None) -> str:
    """Store a whole log (``POST /logs``, ``POST /datasets/{id}/logs``), tied
    to a task's attempt when the body names the task; the new log_id."""
    task_id = body.get("task_id") or ""
    attempt = None
    if body.get("dataset_id") and dataset_id and body["dataset_id"] != dataset_id:
        raise InvalidArgumentError(
            f"key 'dataset_id': {body['dataset_id']!r} is not this route's dataset {dataset_id!r}")
    dataset_id = dataset_id or body.get("dataset_id") or ""
    if task_id:
        task = await task_or_404(store, task_id, dataset_id or None)
        dataset_id = task.dataset_id
        attempt = await _attempt_of(store, task, body.get("instance_id"), body.get("attempt"))
    elif body.get("instance_id") or body.get("attempt"):
        raise InvalidArgumentError("key 'task_id' is needed with instance_id or attempt")
    return await store.add_log(NewLog(name=body.get("name") or "log", data=body["data"], dataset_id=dataset_id,
                                      task_id=task_id, attempt=attempt))


async def start_stream(store: Store, index: LogIndex, task_id: str, instance_id: str, name: str, data: str) -> str:
    """A live log of the claim's running attempt; the new log_id."""
    task = await task_or_404(store, task_id)
    if task.status != "processing" or task.instance_id != instance_id:
        raise Refused(409, f"stale instance_id for task {task.task_id}: this claim no longer holds the task",
                      reason=Reason.STALE_INSTANCE)
    attempt = task.attempts or None
    log_id = await store.add_log(NewLog(name=name, data=data, dataset_id=task.dataset_id,
                                        task_id=task.task_id, attempt=attempt))
    index.remember(log_id, StreamedLog(task.task_id, attempt, len(data)))
    return log_id


async def append(store: Store, index: LogIndex, log_id: str, chunk: str, *, instance_id: str | None,
                 pilot: bool) -> int:
    """Append a chunk to a log; its new size. A pilot (or anyone naming an
    instance_id) appends only to a log of the attempt its claim still runs."""
    entry = await index.lookup(store, log_id)
    if entry.task_id and (instance_id or pilot):
        if not instance_id:
            raise InvalidArgumentError("missing key: instance_id (pilots append only to their running attempt's logs)")
        task = await task_or_404(store, entry.task_id)
        if task.status != "processing" or task.instance_id != instance_id or task.attempts != entry.attempt:
            raise Refused(409, f"stale instance_id for log {log_id}: its attempt of task {task.task_id} "
                               "is no longer running under this claim", reason=Reason.STALE_INSTANCE)
    if entry.size + len(chunk) > index.max_chars:
        raise Refused(413, f"log {log_id} is full ({index.max_chars} characters); "
                           "keep the rest in the pilot's own copy", reason=Reason.LOG_FULL)
    try:
        entry.size = await store.append_log(log_id, chunk)
    except NotFoundError:
        index.forget(log_id)
        raise
    return entry.size


async def delete_log(store: Store, index: LogIndex, log_id: str) -> None:
    index.forget(log_id)
    if not await store.delete_log(log_id):
        raise NotFoundError(f"log {log_id} not found")
