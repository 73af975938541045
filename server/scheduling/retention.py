"""Log retention (IceProd's ``scheduled_tasks/log_cleanup``), as a loop under
its store lease.

Two settings: frazil's own logs of a task (``stdlog``, failure reasons —
every name but stdout/stderr) go after ``log_retention_days`` (IceProd: 31),
the task's stdout/stderr after ``task_log_retention_days`` (a year). A
dataset overrides either in its config's ``options``; 0 keeps logs forever.
The logs of the newest attempt of a failed task stay until its dataset is
complete: they are why it failed, and someone may still act on it.

Each store call reads at most ``log_cleanup_batch`` logs, one range of the
(name, timestamp) index per log name (the settings' cutoffs) or of the
(dataset_id, timestamp) index for a dataset whose override is shorter; a
cursor per walk carries on past the logs it keeps, so kept logs are not
read again and again. A round that filled a page says "more" and the runner
goes on at once.
"""
from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from server.metrics import ServerMetrics
from server.settings import Settings
from server.store import DatasetFilter, ListOptions, LogRef, Store, TaskFilter
from server.store.records import TIME_FORMAT

log = logging.getLogger("frazil.server.retention")

TASK_OUTPUT = ("stdout", "stderr")
"""The task's own output; every other log name is frazil's (stdlog, reasons, ...)."""
OPTION_OWN = "log_retention_days"
OPTION_TASK = "task_log_retention_days"
DAY = 86_400.0


@dataclass(frozen=True)
class Retention:
    """Days each kind of log is kept (0: forever)."""

    own: float
    task: float

    def days(self, name: str) -> float:
        return self.task if name in TASK_OUTPUT else self.own


@dataclass
class RetentionReport:
    """What the retention loop did since this server started (the dashboard's counts)."""

    removed: dict[str, int] = field(default_factory=lambda: {"own": 0, "task": 0})
    kept_failed: int = 0
    """Expired logs kept because they are the newest attempt of a failed task."""
    last_round: str = ""


def _stamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(TIME_FORMAT)


def _days(value: Any) -> float | None:
    """A usable override: a number of days >= 0 (anything else is ignored)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)


class LogRetention:
    """The loop's state: per-walk cursors, dataset overrides, the report."""

    def __init__(self, store: Store, settings: Settings, metrics: ServerMetrics) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.default = Retention(settings.log_retention_days, settings.task_log_retention_days)
        self.report = RetentionReport()
        self._cursors: dict[str, tuple[str, str] | None] = {}
        self._rules: dict[str, Retention] = {}
        self._dataset_status: dict[str, str] = {}

    async def _load_datasets(self) -> None:
        """Every dataset's status and retention (its current config's options)."""
        rules: dict[str, Retention] = {}
        statuses: dict[str, str] = {}
        cursor: str | None = None
        while True:
            page = await self.store.list_datasets(DatasetFilter(), ListOptions(limit=1000, after=cursor,
                                                                               keys=["dataset_id", "status"]))
            for row in page.rows:
                statuses[row["dataset_id"]] = row["status"]
            cursor = page.next_cursor
            if cursor is None:
                break
        for dataset_id in statuses:
            config = await self.store.get_config(dataset_id)
            options = (config.config.get("options") if config is not None else None) or {}
            own, task = _days(options.get(OPTION_OWN)), _days(options.get(OPTION_TASK))
            if own is not None or task is not None:
                rules[dataset_id] = Retention(self.default.own if own is None else own,
                                              self.default.task if task is None else task)
        self._rules, self._dataset_status = rules, statuses

    def rule(self, dataset_id: str) -> Retention:
        return self._rules.get(dataset_id, self.default)

    async def run(self, now: float | None = None) -> bool:
        """One round; True when a walk filled its page (go on at once)."""
        now = time.time() if now is None else now
        await self._load_datasets()
        batch = max(self.settings.log_cleanup_batch, 1)
        more = False
        for name in await self.store.log_names():
            days = self.default.days(name)
            if days > 0:
                more |= await self._walk(f"name:{name}", _stamp(now - days * DAY), batch, now, name=name)
        for dataset_id, rule in self._rules.items():
            # only a dataset that removes some kind of log sooner than the settings needs its own walk
            sooner = [mine for mine, usual in ((rule.own, self.default.own), (rule.task, self.default.task))
                      if mine > 0 and (usual == 0 or mine < usual)]
            if sooner:
                more |= await self._walk(f"dataset:{dataset_id}", _stamp(now - min(sooner) * DAY), batch, now,
                                         dataset_id=dataset_id)
        self.report.last_round = _stamp(now)
        return more

    async def _walk(self, key: str, before: str, batch: int, now: float, *, name: str | None = None,
                    dataset_id: str | None = None) -> bool:
        refs = await self.store.logs_before(before, name=name, dataset_id=dataset_id, after=self._cursors.get(key),
                                            limit=batch)
        full = len(refs) >= batch
        self._cursors[key] = (refs[-1].timestamp, refs[-1].log_id) if full else None  # short page: start over
        expired = [r for r in refs if self._expired(r, now)]
        protected = await self._protected(expired)
        doomed = [r for r in expired if r.log_id not in protected]
        self.report.kept_failed += len(protected)
        if doomed:
            removed = await self.store.delete_log_ids([r.log_id for r in doomed])
            for kind in ("own", "task"):
                count = sum(1 for r in doomed if (r.name in TASK_OUTPUT) == (kind == "task"))
                self.report.removed[kind] += count
                if count:
                    self.metrics.logs_removed.labels(kind).inc(count)
            log.info("old logs removed", extra={"walk": key, "count": removed})
        return full

    def _expired(self, ref: LogRef, now: float) -> bool:
        days = self.rule(ref.dataset_id).days(ref.name)
        return days > 0 and ref.timestamp < _stamp(now - days * DAY)

    async def _protected(self, refs: list[LogRef]) -> set[str]:
        """Logs of the newest attempt of a failed task whose dataset is not complete."""
        candidates = [r for r in refs if r.task_id and self._dataset_status.get(r.dataset_id) != "complete"]
        if not candidates:
            return set()
        page = await self.store.list_tasks(TaskFilter(task_ids=sorted({r.task_id for r in candidates})),
                                           ListOptions(keys=["task_id", "status", "attempts"],
                                                       limit=len(candidates)))
        failed = {row["task_id"]: int(row.get("attempts") or 0) for row in page.rows if row["status"] == "failed"}
        return {r.log_id for r in candidates
                if r.task_id in failed and (r.attempt is None or r.attempt >= failed[r.task_id])}


async def retention_summary(store: Store, settings: Settings, loop: LogRetention | None) -> dict[str, Any]:
    """The admin dashboard's log-retention panel: the settings, the logs
    stored by name (count, oldest), and what this replica's loop removed
    (None where another replica holds the loop's lease or loops are off)."""
    stored = [{"name": name, "kind": "task" if name in TASK_OUTPUT else "own", "count": count, "oldest": oldest,
               "days": settings.task_log_retention_days if name in TASK_OUTPUT else settings.log_retention_days}
              for name, (count, oldest) in (await store.log_names()).items()]
    report = loop.report if loop is not None else None
    return {"own_days": settings.log_retention_days, "task_days": settings.task_log_retention_days,
            "stored": stored,
            "removed": dict(report.removed) if report is not None else None,
            "kept_failed": report.kept_failed if report is not None else None,
            "last_round": report.last_round if report is not None else ""}
