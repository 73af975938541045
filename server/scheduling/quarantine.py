"""Quarantine of bad hosts and sites (issue 16 item 3).

A worker node with a broken CVMFS mount or a dead GPU fails every task it
gets, fast, and so eats the queue: each failure is retried, and the next
claim from that node fails again. The ``quarantine`` loop (under its store
lease) reads the attempts that ended in the last ``quarantine_window_minutes``
and quarantines a host (or a site) when

* it failed at least ``quarantine_host_failures`` (``quarantine_site_failures``)
  different tasks non-physically (failure class ``nonphysics``),
* it failed more attempts than it completed, and
* other hosts (sites) completed tasks of the same datasets in that window —
  so the tasks are fine and the machine is not.

A quarantined host's pilots get no claims (``Reason.QUARANTINED``) and are
set to drain; the provider submits no pilots to a quarantined site. It ends
after ``quarantine_hours`` or when an admin lifts it.
"""
from __future__ import annotations

import datetime
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from server.settings import Settings
from server.store import Attempt, Store
from server.store.records import TIME_FORMAT, Quarantine, nowstr

log = logging.getLogger("frazil.server.quarantine")

ACTIVE_TTL = 2.0
"""Seconds the claim path trusts its copy of the active quarantines."""


def _stamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(TIME_FORMAT)


@dataclass
class _Tally:
    failed_tasks: set[str] = field(default_factory=set)
    failed: int = 0
    completed: int = 0
    datasets: set[str] = field(default_factory=set)
    kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class Verdict:
    kind: str
    name: str
    reason: str


def _tally(attempts: list[Attempt], key: str,
           forgiven: dict[str, str]) -> tuple[dict[str, _Tally], dict[str, dict[str, int]]]:
    """Per host (or site): its failures and completions; and per dataset, the
    completions of each host (site). Failures that ended before a host's
    quarantine was lifted (or ran out) were judged already: ``forgiven``
    maps a name to that time."""
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    completed: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for attempt in attempts:
        name = getattr(attempt, key)
        if not name:
            continue
        tally = tallies[name]
        if attempt.status == "complete":
            tally.completed += 1
            completed[attempt.dataset_id][name] += 1
        elif attempt.status in ("reset", "failed") and attempt.failure_class == "nonphysics" \
                and (attempt.end or "") > forgiven.get(name, ""):
            tally.failed += 1
            tally.failed_tasks.add(attempt.task_id)
            tally.datasets.add(attempt.dataset_id)
            tally.kinds[attempt.kind or "unknown"] += 1
    return tallies, completed


def judge(attempts: list[Attempt], kind: str, threshold: int, window_minutes: float,
          forgiven: dict[str, str] | None = None) -> list[Verdict]:
    """The hosts (kind="host") or sites (kind="site") to quarantine, with why."""
    if threshold <= 0:  # 0 turns this kind of quarantine off
        return []
    tallies, completed = _tally(attempts, "host" if kind == "host" else "site", forgiven or {})
    verdicts = []
    for name, tally in sorted(tallies.items()):
        if len(tally.failed_tasks) < threshold or tally.failed <= tally.completed:
            continue
        others = sum(n for dataset in tally.datasets for who, n in completed[dataset].items() if who != name)
        if others == 0:  # nobody else succeeds at these tasks either: the tasks are the problem
            continue
        kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(tally.kinds.items(), key=lambda kv: -kv[1])[:3])
        verdicts.append(Verdict(kind, name, (
            f"{kind} {name} failed {len(tally.failed_tasks)} different tasks non-physically in "
            f"{window_minutes:g} min ({tally.failed} failed attempts, {tally.completed} completed; {kinds}) "
            f"while other {kind}s completed {others} tasks of the same datasets")))
    return verdicts


class QuarantineWatch:
    """The loop's state: reads the window's attempts and records verdicts."""

    def __init__(self, store: Store, settings: Settings, on_new: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.settings = settings
        self.on_new = on_new
        """Called after a new quarantine (this replica's claim path then reads them at once)."""
        self.recorded: list[Quarantine] = []
        """Quarantines this replica started (newest last), for the log and tests."""

    async def window(self, now: float) -> list[Attempt]:
        """Attempts that ended in the window, at most ``quarantine_scan_max``."""
        since = _stamp(now - self.settings.quarantine_window_minutes * 60)
        until = _stamp(now + 1)
        attempts: list[Attempt] = []
        cursor: str | None = None
        while len(attempts) < self.settings.quarantine_scan_max:
            page, cursor = await self.store.attempts_ended(
                since, until, after=cursor, limit=min(5000, self.settings.quarantine_scan_max - len(attempts)))
            attempts.extend(page)
            if cursor is None:
                break
        return attempts

    async def _forgiven(self, now: str) -> dict[str, dict[str, str]]:
        """{kind: {name: when its latest quarantine was lifted or ran out}}: a
        lifted host starts with a clean slate rather than being quarantined
        again at once for the failures that got it quarantined."""
        forgiven: dict[str, dict[str, str]] = {"host": {}, "site": {}}
        for q in await self.store.list_quarantines(limit=1000):
            ended = q.lifted or (q.expires if q.expires <= now else "")
            if ended and ended > forgiven[q.kind].get(q.name, ""):
                forgiven[q.kind][q.name] = ended
        return forgiven

    async def run(self, now: float | None = None) -> bool:
        """One round of the ``quarantine`` loop."""
        settings = self.settings
        now = time.time() if now is None else now
        attempts = await self.window(now)
        forgiven = await self._forgiven(_stamp(now))
        verdicts = (judge(attempts, "host", settings.quarantine_host_failures, settings.quarantine_window_minutes,
                          forgiven["host"])
                    + judge(attempts, "site", settings.quarantine_site_failures,
                            settings.quarantine_window_minutes, forgiven["site"]))
        expires = _stamp(now + settings.quarantine_hours * 3600)
        for verdict in verdicts:
            quarantine, new = await self.store.add_quarantine(verdict.kind, verdict.name, verdict.reason, expires)
            if new:
                self.recorded.append(quarantine)
                self.on_new()
                # the admins' alert until alerts exist: a warning in the server log, and the dashboard
                log.warning("quarantined", extra={"kind": verdict.kind, "target": verdict.name,
                                                  "reason": verdict.reason, "until": expires})
        return False


class ActiveQuarantines:
    """The claim path's and provider's view of who is quarantined now, read
    from the store at most every ``ACTIVE_TTL`` seconds (a lift or a new
    quarantine takes effect within that)."""

    def __init__(self, ttl: float = ACTIVE_TTL) -> None:
        self.ttl = ttl
        self._at = -ttl
        self._hosts: dict[str, Quarantine] = {}
        self._sites: dict[str, Quarantine] = {}

    async def _refresh(self, store: Store) -> None:
        now = time.monotonic()
        if now - self._at < self.ttl:
            return
        active = await store.list_quarantines(active_at=nowstr(), limit=10_000)
        self._hosts = {q.name: q for q in active if q.kind == "host"}
        self._sites = {q.name: q for q in active if q.kind == "site"}
        self._at = now

    async def blocking(self, store: Store, host: str, site: str) -> Quarantine | None:
        """The quarantine that keeps a pilot on this host and site from work, if any."""
        await self._refresh(store)
        found = self._hosts.get(host) if host else None
        if found is None and site:
            found = self._sites.get(site)
        return found

    async def sites(self, store: Store) -> set[str]:
        await self._refresh(store)
        return set(self._sites)

    def forget(self) -> None:
        """After a lift or an admin's quarantine on this replica: read again at once."""
        self._at = -self.ttl


async def lift(store: Store, quarantine_id: str, by: str) -> Quarantine | None:
    """An admin lifts a quarantine (REST and the dashboard)."""
    lifted = await store.lift_quarantine(quarantine_id, by)
    if lifted is not None:
        log.info("quarantine lifted", extra={"kind": lifted.kind, "target": lifted.name, "by": by})
    return lifted


async def quarantine_by_hand(store: Store, kind: str, name: str, reason: str, hours: float,
                             by: str) -> tuple[Quarantine, bool]:
    """An admin quarantines a host or site (REST); (the quarantine, whether it is new)."""
    reason = reason or "quarantined by hand"
    made, new = await store.add_quarantine(kind, name, f"{reason} (by {by})", _stamp(time.time() + hours * 3600))
    if new:
        log.warning("quarantined", extra={"kind": kind, "target": name, "reason": made.reason, "until": made.expires})
    return made, new


async def list_active(store: Store, *, everything: bool = False, limit: int = 100) -> list[Quarantine]:
    """Quarantines in force now (or, with ``everything``, the newest of all)."""
    return await store.list_quarantines(active_at=None if everything else nowstr(), limit=limit)
