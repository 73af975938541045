"""Datasets, immutable config versions and per-dataset rights."""
from __future__ import annotations

import json
import sqlite3
from typing import Any, Sequence

from ..interface import ConflictError, NotFoundError
from ..query import DatasetFilter, ListOptions, Page, check_statuses
from ..records import ConfigVersion, Dataset, DatasetRights, NewDataset, nowstr
from .. import checks
from ..rules import allowed_from, canonical_json, config_sha256
from common import states
from .base import SQLiteBase
from .listing import Where, paginate
from .rows import DATASET_COLS, dumps, to_config, to_dataset
from .schema import add_functions


def _dataset_where(f: DatasetFilter) -> Where:
    check_statuses(f.status, set(states.DATASET_STATUSES), "dataset")
    return (Where().any_of("status", f.status).any_of("grp", f.groups).any_of("username", f.users)
            .any_of("dataset_id", f.dataset_ids))


def get_dataset_row(conn: sqlite3.Connection, dataset_id: str) -> sqlite3.Row | None:
    return conn.execute(f"SELECT {DATASET_COLS} FROM datasets WHERE dataset_id = ?", (dataset_id,)).fetchone()


class DatasetsMixin(SQLiteBase):

    async def create_dataset(self, new: NewDataset) -> Dataset:
        dataset_id, tasks_submitted = checks.new_dataset(new)

        def op(conn: sqlite3.Connection) -> Dataset:
            if get_dataset_row(conn, dataset_id) is not None:
                raise ConflictError(f"dataset {dataset_id} already exists")
            row = conn.execute("""INSERT INTO counters (name, value) VALUES ('dataset_num', 1)
                                  ON CONFLICT(name) DO UPDATE SET value = value + 1
                                  RETURNING value""").fetchone()
            now = nowstr()
            conn.execute(
                f"INSERT INTO datasets ({DATASET_COLS}) VALUES ({','.join('?' * 16)})",
                (dataset_id, row[0], new.description, new.jobs_submitted, tasks_submitted, new.tasks_per_job,
                 new.group, new.username, new.status, now, now, new.priority, int(new.debug),
                 int(new.jobs_immutable), 0, int(new.always_active)))
            return to_dataset(get_dataset_row(conn, dataset_id))  # type: ignore[arg-type]
        return await self.db.write(op)

    async def get_dataset(self, dataset_id: str) -> Dataset | None:
        row = await self.db.read(lambda conn: get_dataset_row(conn, dataset_id))
        return None if row is None else to_dataset(row)

    async def get_dataset_by_number(self, number: int) -> Dataset | None:
        row = await self.db.read(lambda conn: conn.execute(
            f"SELECT {DATASET_COLS} FROM datasets WHERE dataset = ?", (number,)).fetchone())
        return None if row is None else to_dataset(row)

    async def list_datasets(self, filter: DatasetFilter = DatasetFilter(),
                            opts: ListOptions = ListOptions()) -> Page:
        where = _dataset_where(filter)
        return await self.db.read(lambda conn: paginate(
            conn, table="datasets", columns=DATASET_COLS, where=where, opts=opts,
            to_doc=lambda r: to_dataset(r).to_doc(), id_field="dataset_id"))

    async def update_dataset(self, dataset_id: str, *, description: str | None = None,
                             priority: float | None = None, debug: bool | None = None,
                             always_active: bool | None = None) -> bool:
        sets: dict[str, Any] = {}
        if description is not None:
            sets["description"] = description
        if priority is not None:
            sets["priority"] = float(priority)
        if debug is not None:
            sets["debug"] = int(debug)
        if always_active is not None:
            sets["always_active"] = int(always_active)
        if not sets:
            return await self.get_dataset(dataset_id) is not None
        sql = f"UPDATE datasets SET {', '.join(f'{k} = ?' for k in sets)} WHERE dataset_id = ?"
        return await self.db.write(lambda conn: conn.execute(sql, (*sets.values(), dataset_id)).rowcount > 0)

    async def set_jobs_submitted(self, dataset_id: str, jobs_submitted: int) -> Dataset:
        checks.whole_number("jobs_submitted", jobs_submitted)

        def op(conn: sqlite3.Connection) -> Dataset:
            row = get_dataset_row(conn, dataset_id)
            if row is None:
                raise NotFoundError(f"dataset {dataset_id} not found")
            checks.jobs_submitted_change(dataset_id, immutable=bool(row["jobs_immutable"]),
                                         current=row["jobs_submitted"], asked=jobs_submitted)
            conn.execute("""UPDATE datasets SET jobs_submitted = ?, tasks_submitted = ? * tasks_per_job
                            WHERE dataset_id = ?""", (jobs_submitted, jobs_submitted, dataset_id))
            if jobs_submitted > row["jobs_submitted"] and row["status"] in states.REOPENED_BY_MORE_JOBS \
                    and not row["truncated"]:
                conn.execute("UPDATE datasets SET status = 'processing', status_changed = ? WHERE dataset_id = ?",
                             (nowstr(), dataset_id))
            if jobs_submitted != row["jobs_submitted"]:
                # the job_index term of the task priority is relative to
                # jobs_submitted: one indexed statement re-bases the tasks
                # not queued yet (queued and finished ones keep their value)
                add_functions(conn)
                conn.execute("""UPDATE tasks INDEXED BY ix_tasks_dataset_status
                                SET prio_offset = task_priority_offset(job_index, task_index, ?, ?)
                                WHERE dataset_id = ? AND status IN ('idle', 'waiting')""",
                             (row["tasks_per_job"], jobs_submitted, dataset_id))
            return to_dataset(get_dataset_row(conn, dataset_id))  # type: ignore[arg-type]
        return await self.db.write(op)

    async def truncate_dataset(self, dataset_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            row = get_dataset_row(conn, dataset_id)
            if row is None:
                return False
            checks.truncatable(dataset_id, row["status"])
            conn.execute("UPDATE datasets SET truncated = 1 WHERE dataset_id = ?", (dataset_id,))
            return True
        return await self.db.write(op)

    async def set_dataset_status(self, dataset_id: str, status: str, *, force: bool = False) -> bool:
        prev = sorted(allowed_from("dataset", status, force))

        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                f"""UPDATE datasets SET status = ?, status_changed = ? WHERE dataset_id = ? AND status != ?
                    AND status IN ({','.join('?' * len(prev))})""",
                (status, nowstr(), dataset_id, status, *prev)).rowcount > 0
        return await self.db.write(op)

    async def dataset_status_summary(self, filter: DatasetFilter = DatasetFilter()) -> dict[str, list[str]]:
        where = _dataset_where(filter)

        def op(conn: sqlite3.Connection) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for r in conn.execute(f"SELECT status, dataset_id FROM datasets WHERE {where.sql()} ORDER BY seq",
                                  where.params):
                out.setdefault(r[0], []).append(r[1])
            return out
        return await self.db.read(op)

    # ------------------------------------------------------------ config versions

    async def add_config_version(self, dataset_id: str, config: dict[str, Any], author: str,
                                 comment: str = "") -> int:
        checks.config(config)
        body = canonical_json(config)
        digest = config_sha256(config)

        def op(conn: sqlite3.Connection) -> int:
            if get_dataset_row(conn, dataset_id) is None:
                raise NotFoundError(f"dataset {dataset_id} not found")
            version = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM config_versions WHERE dataset_id = ?",
                                   (dataset_id,)).fetchone()[0]
            conn.execute("INSERT INTO config_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (dataset_id, version, body, author, comment, nowstr(), digest))
            return int(version)
        return await self.db.write(op)

    async def get_config(self, dataset_id: str, version: int | None = None) -> ConfigVersion | None:
        def op(conn: sqlite3.Connection) -> sqlite3.Row | None:
            if version is None:
                return conn.execute("""SELECT * FROM config_versions WHERE dataset_id = ?
                                       ORDER BY version DESC LIMIT 1""", (dataset_id,)).fetchone()
            return conn.execute("SELECT * FROM config_versions WHERE dataset_id = ? AND version = ?",
                                (dataset_id, version)).fetchone()
        row = await self.db.read(op)
        return None if row is None else to_config(row)

    async def list_config_versions(self, dataset_id: str) -> list[ConfigVersion]:
        rows = await self.db.read(lambda conn: conn.execute(
            "SELECT * FROM config_versions WHERE dataset_id = ? ORDER BY version", (dataset_id,)).fetchall())
        return [to_config(r) for r in rows]

    # ------------------------------------------------------------ rights

    async def set_dataset_rights(self, dataset_id: str, rights: DatasetRights) -> None:
        await self.db.write(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO rights VALUES (?, ?, ?, ?, ?)",
            (dataset_id, dumps(rights.read_groups), dumps(rights.write_groups), dumps(rights.read_users),
             dumps(rights.write_users))))

    async def rights_for(self, dataset_ids: Sequence[str]) -> dict[str, DatasetRights]:
        ids = list(dict.fromkeys(dataset_ids))
        if not ids:
            return {}
        where = Where().any_of("dataset_id", ids)
        rows = await self.db.read(lambda conn: conn.execute(
            f"SELECT * FROM rights WHERE {where.sql()}", where.params).fetchall())
        return {r["dataset_id"]: DatasetRights(json.loads(r["read_groups"]), json.loads(r["write_groups"]),
                                               json.loads(r["read_users"]), json.loads(r["write_users"]))
                for r in rows}
