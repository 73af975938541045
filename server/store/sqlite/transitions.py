"""The one place where task status changes made outside the claim/report
path keep the store's derived data right, in the same transaction:

* queued counts per resource class (the claim path reads them);
* ``deps_pending`` of dependent tasks (dependency release reads it): a task
  becoming complete releases one dependency of each dependent, a complete
  task reopened by a hard reset takes it back;
* the claim: a task leaving processing this way loses its instance_id,
  pilot and lease, and its open attempt is closed as ``cancelled`` so the
  pilot's late report is stale;
* a paced retry's ``not_before``: any status change made here (a user's
  reset, a suspend) makes the task eligible at once.
"""
from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Sequence

from .classes import adjust_queued

MOVE_COLS = "seq, task_id, status, class_id, instance_id, priority"
"""Columns :func:`move_tasks` needs of each row."""


def release_dependents(conn: sqlite3.Connection, deltas: Sequence[tuple[int, str]]) -> None:
    """Apply (+1/-1, task_id) to ``deps_pending`` of the tasks depending on task_id."""
    updates = []
    for delta, task_id in deltas:  # most tasks have no dependents: one primary-key probe
        updates.extend((delta, r[0]) for r in conn.execute(
            "SELECT task_id FROM task_deps WHERE depends_on = ?", (task_id,)))
    if updates:
        conn.executemany("UPDATE tasks SET deps_pending = deps_pending + ? WHERE task_id = ?", updates)


def move_tasks(conn: sqlite3.Connection, rows: Sequence[sqlite3.Row], new: str, now: str, *,
               reset_failures: bool = False) -> int:
    """Set ``new`` status on ``rows`` (selected with MOVE_COLS); returns how many
    changed. ``reset_failures`` (hard reset) also zeroes the failure counters
    and the site, even for a task already in ``new``."""
    queued: Counter[int] = Counter()
    tops: dict[int, float] = {}
    deps: list[tuple[int, str]] = []
    cancelled: list[tuple[str, str]] = []
    updates: list[tuple[str, str, int, str]] = []
    for r in rows:
        old = r["status"]
        if old == new and not reset_failures:
            continue
        if old == "queued":
            queued[r["class_id"]] -= 1
        if new == "queued":
            queued[r["class_id"]] += 1
            tops[r["class_id"]] = max(tops.get(r["class_id"], r["priority"]), r["priority"])
        if old != "complete" and new == "complete":
            deps.append((-1, r["task_id"]))
        elif old == "complete" and new != "complete":
            deps.append((1, r["task_id"]))
        if r["instance_id"]:
            cancelled.append((now, r["task_id"], r["instance_id"]))
        updates.append((new, now, r["seq"], old))
    extra = ", failures = 0, failures_nonphysics = 0, failures_infra = 0, site = ''" if reset_failures else ""
    conn.executemany(f"""UPDATE tasks SET status = ?, status_changed = ?, instance_id = '', pilot_id = '',
                         lease_expires = NULL, not_before = NULL{extra} WHERE seq = ? AND status = ?""", updates)
    adjust_queued(conn, queued, tops)
    release_dependents(conn, deps)
    if cancelled:
        conn.executemany("""UPDATE attempts SET status = 'cancelled', "end" = ?
                            WHERE task_id = ? AND instance_id = ? AND "end" IS NULL""", cancelled)
    return len(updates)
