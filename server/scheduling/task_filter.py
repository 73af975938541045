"""Retry by filter (issue 16.1): reset, suspend or hard-reset exactly the tasks
of a dataset that match a filter, or count them first (dry run).

The filter's keys are field names: the task's own (``status``, ``name``,
``site``, ``job_index``) and its last attempt's (``failure_class``, ``kind``,
``rule``, ``host``, ``pilot_id``, and ``since``/``until`` on its end time).
The walk reads the dataset's tasks page by page through the indexed
``(dataset_id, status)`` / ``(dataset_id, name, status)`` listing and joins
each page to its tasks' last attempts in one store call when the filter
needs them; a filter on attempt fields without a status (or with a time
window) walks the dataset's attempts by end time instead, so the tasks that
never ran are not read. Each page's matches are changed through
:mod:`statuses` (which rolls the jobs and the dataset up) before the next
page is read: memory and the length of each write stay bounded by ``PAGE``
whatever the dataset's size.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping

from common import states
from server.scheduling import statuses
from server.store import Attempt, InvalidArgumentError, ListOptions, Store, TaskFilter
from server.store.records.base import TIME_FORMAT

PAGE = 2000
SAMPLE = 20
ACTIONS = ("reset", "suspend", "hard_reset")
TASK_KEYS = ("status", "name", "site", "job_index")
ATTEMPT_KEYS = ("failure_class", "kind", "rule", "host", "pilot_id", "since", "until")
_ROW_KEYS = ("task_id", "job_id", "job_index", "name", "status", "site", "failures")

FILTER_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "status": {"oneOf": [{"type": "string", "enum": list(states.TASK_STATUSES)},
                             {"type": "array", "minItems": 1, "maxItems": 10,
                              "items": {"type": "string", "enum": list(states.TASK_STATUSES)}}]},
        "name": {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 1000},
                           {"type": "array", "minItems": 1, "maxItems": 100,
                            "items": {"type": "string", "minLength": 1, "maxLength": 1000}}]},
        **{key: {"type": "string", "minLength": 1, "maxLength": 1000}
           for key in ("site", "failure_class", "kind", "rule", "host", "pilot_id")},
        "job_index": {"oneOf": [{"type": "integer", "minimum": 0},
                                {"type": "object", "additionalProperties": False,
                                 "properties": {"min": {"type": "integer", "minimum": 0},
                                                "max": {"type": "integer", "minimum": 0}}}]},
        "since": {"type": "string", "minLength": 1, "maxLength": 40},
        "until": {"type": "string", "minLength": 1, "maxLength": 40},
    },
}
BODY_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["action", "filter"],
    "properties": {"action": {"type": "string", "enum": list(ACTIONS)}, "filter": FILTER_SCHEMA,
                   "dry_run": {"type": "boolean"}},
}


def parse_time(value: str, what: str) -> str:
    """An ISO date or date-time (``2026-12-04``, ``2026-12-04T10:00``, with or
    without a zone) as the store's UTC time string."""
    try:
        moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgumentError(f"{what}: {value!r} is not an ISO date or date-time (e.g. 2026-12-04T10:00)") \
            from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment.strftime(TIME_FORMAT)


def parse_job_range(text: str) -> int | dict[str, int]:
    """``7`` or ``100-199`` (the CLI's ``--jobs`` and the website's field) as the filter's ``job_index``."""
    match = re.fullmatch(r"\s*(\d{1,12})\s*(?:-\s*(\d{1,12})\s*)?", text)
    if not match:
        raise InvalidArgumentError(f"jobs: {text[:40]!r} is not a job index or a range A-B")
    low, high = int(match.group(1)), match.group(2)
    if high is None:
        return low
    if int(high) < low:
        raise InvalidArgumentError(f"jobs: {low} is above {high}")
    return {"min": low, "max": int(high)}


@dataclass(frozen=True)
class BulkFilter:
    """A checked filter (see the module docstring for the keys)."""

    status: tuple[str, ...] | None = None
    name: tuple[str, ...] | None = None
    site: str | None = None
    job_min: int | None = None
    job_max: int | None = None
    attempt: dict[str, str] = field(default_factory=dict)
    """failure_class / kind / rule / host / pilot_id: exact values of the last attempt."""
    since: str | None = None
    until: str | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> "BulkFilter":
        """From the REST body's ``filter`` (already checked against FILTER_SCHEMA)."""
        def many(value: Any) -> tuple[str, ...] | None:
            return None if value is None else ((value,) if isinstance(value, str) else tuple(value))
        status = many(raw.get("status"))
        unknown = sorted(set(status or ()) - set(states.TASK_STATUSES))
        if unknown:
            raise InvalidArgumentError(f"filter status: unknown task status {unknown[0]!r}; choose from "
                                       f"{', '.join(states.TASK_STATUSES)}")
        index = raw.get("job_index")
        lo, hi = (index, index) if isinstance(index, int) else ((index or {}).get("min"), (index or {}).get("max"))
        if lo is not None and hi is not None and lo > hi:
            raise InvalidArgumentError(f"filter job_index: min {lo} is above max {hi}")
        since = parse_time(raw["since"], "filter since") if "since" in raw else None
        until = parse_time(raw["until"], "filter until") if "until" in raw else None
        if since and until and since >= until:
            raise InvalidArgumentError("filter since must be before until")
        return cls(status=status, name=many(raw.get("name")), site=raw.get("site"), job_min=lo,
                   job_max=hi, attempt={k: raw[k] for k in ATTEMPT_KEYS[:5] if k in raw}, since=since, until=until)

    @property
    def needs_attempts(self) -> bool:
        return bool(self.attempt) or self.since is not None or self.until is not None

    def task_matches(self, row: Mapping[str, Any]) -> bool:
        if self.site is not None and row.get("site") != self.site:
            return False
        index = row["job_index"]
        return (self.job_min is None or index >= self.job_min) and (self.job_max is None or index <= self.job_max)

    def attempt_matches(self, attempt: Attempt | None) -> bool:
        if not self.needs_attempts:
            return True
        if attempt is None:
            return False
        if any(getattr(attempt, key) != value for key, value in self.attempt.items()):
            return False
        end = attempt.end or attempt.start
        return (self.since is None or end >= self.since) and (self.until is None or end < self.until)


@dataclass
class BulkResult:
    count: int = 0
    """Tasks that matched (dry run) or were changed."""
    matched: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "matched": self.matched, "sample": self.sample}


def _sample_row(row: Mapping[str, Any], attempt: Attempt | None) -> dict[str, Any]:
    out = {k: row.get(k) for k in _ROW_KEYS}
    if attempt is not None:
        out.update(attempt=attempt.attempt, failure_class=attempt.failure_class, kind=attempt.kind,
                   rule=attempt.rule, host=attempt.host, pilot_id=attempt.pilot_id, end=attempt.end,
                   reason=attempt.reason[:200])
    return out


async def _apply(store: Store, dataset_id: str, action: str, task_ids: list[str]) -> int:
    """One page of matches through the status machinery (rolled up); how many changed."""
    if action == "suspend":
        return await statuses.bulk_tasks(store, dataset_id, "suspended", job_ids=None, task_ids=task_ids)
    hard = action == "hard_reset"
    return await statuses.bulk_tasks(store, dataset_id, states.RESET_TARGET, job_ids=None, task_ids=task_ids,
                                     force=hard, reset_failures=hard)


Matches = tuple[list[dict[str, Any]], dict[str, Attempt]]
"""One page: the matching task rows and their last attempts (by task id)."""


async def _by_tasks(store: Store, dataset_id: str, flt: BulkFilter) -> AsyncIterator[Matches]:
    """Walk the dataset's tasks (by status / name when given: indexed), each
    page joined to its tasks' last attempts when the filter needs them."""
    base = TaskFilter(dataset_id=dataset_id, status=flt.status, name=flt.name,
                      job_index=flt.job_min if flt.job_min is not None and flt.job_min == flt.job_max else None)
    after: str | None = None
    while True:
        page = await store.list_tasks(base, ListOptions(keys=_ROW_KEYS, limit=PAGE, after=after))
        rows = [r for r in page.rows if flt.task_matches(r)]
        attempts = await store.last_attempts([r["task_id"] for r in rows]) if rows and flt.needs_attempts else {}
        yield [r for r in rows if flt.attempt_matches(attempts.get(r["task_id"]))], attempts
        after = page.next_cursor
        if after is None:
            return


async def _by_attempts(store: Store, dataset_id: str, flt: BulkFilter) -> AsyncIterator[Matches]:
    """Walk the dataset's finished attempts by end time (within since/until),
    keep those matching the attempt fields that are their task's last, then
    read just those tasks: a filter on attempt fields alone never reads the
    tasks that did not run."""
    after: str | None = None
    while True:
        attempts, after = await store.dataset_attempts(dataset_id, since=flt.since, until=flt.until, after=after,
                                                       limit=PAGE)
        found = {a.task_id: a for a in attempts if flt.attempt_matches(a)}
        if found:
            last = await store.last_attempts(list(found))
            found = {t: a for t, a in found.items() if t in last and last[t].attempt == a.attempt}
        if found:
            # by id (see forecast.names_of), the dataset checked on the rows
            page = await store.list_tasks(TaskFilter(task_ids=list(found), status=flt.status, name=flt.name),
                                          ListOptions(keys=(*_ROW_KEYS, "dataset_id")))
            yield [r for r in page.rows if r["dataset_id"] == dataset_id and flt.task_matches(r)], found
        if after is None:
            return


async def bulk_action(store: Store, dataset_id: str, action: str, flt: BulkFilter, *, dry_run: bool) -> BulkResult:
    """Count (``dry_run``) or change the dataset's tasks matching ``flt``;
    ``count``: matched (dry run) or changed, ``matched``: matched, ``sample``:
    the first matches as they were. A filter with attempt fields and no
    status, or with a time window, walks the attempts (by end time); any
    other walks the tasks."""
    if action not in ACTIONS:
        raise InvalidArgumentError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    result = BulkResult()
    by_attempts = flt.needs_attempts and (flt.status is None or flt.since is not None or flt.until is not None)
    async for matched, attempts in (_by_attempts if by_attempts else _by_tasks)(store, dataset_id, flt):
        result.matched += len(matched)
        for row in matched[:SAMPLE - len(result.sample)]:
            result.sample.append(_sample_row(row, attempts.get(row["task_id"])))
        if matched and not dry_run:
            result.count += await _apply(store, dataset_id, action, [r["task_id"] for r in matched])
    if dry_run:
        result.count = result.matched
    return result
