"""Per-job files, scratch-store records, task_stats documents and provenance."""
from __future__ import annotations

import sqlite3

from .. import checks
from ..interface import NotFoundError
from ..query import ListOptions, Page
from ..records import DatasetFile, ProvenanceRecord, ScratchFile, TaskStat, new_id, nowstr
from .base import SQLiteBase
from .listing import Where, paginate
from .rows import FILE_COLS, dumps, to_file, to_scratch, to_task_stat



class FilesMixin(SQLiteBase):

    async def add_file(self, dataset_id: str, remote: str, movement: str, *, task_id: str | None = None,
                       job_index: int | None = None, task_name: str | None = None, local: str = "",
                       type: str = "permanent", transfer: str = "true",
                       compression: bool = False) -> DatasetFile:
        checks.file_args(remote, movement, task_id, job_index, task_name)

        def op(conn: sqlite3.Connection) -> DatasetFile:
            if task_id is not None:
                row = conn.execute("SELECT task_id FROM tasks WHERE task_id = ? AND dataset_id = ?",
                                   (task_id, dataset_id)).fetchone()
                missing = f"task {task_id} not found in dataset {dataset_id}"
            else:
                row = conn.execute("SELECT task_id FROM tasks WHERE dataset_id = ? AND job_index = ? AND name = ?",
                                   (dataset_id, job_index, task_name)).fetchone()
                missing = f"no task {task_name!r} in job {job_index} of dataset {dataset_id}"
            if row is None:
                raise NotFoundError(missing)
            f = DatasetFile(new_id(), dataset_id, row[0], remote, movement, local, type, transfer, compression)
            conn.execute(f"INSERT INTO files ({FILE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (f.file_id, f.dataset_id, f.task_id, f.remote, f.movement, f.local, f.type, f.transfer,
                          int(f.compression)))
            return f
        return await self.db.write(op)

    async def list_files(self, dataset_id: str, task_id: str | None = None) -> list[DatasetFile]:
        where = Where().add("dataset_id = ?", dataset_id)
        if task_id is not None:
            where.add("task_id = ?", task_id)
        rows = await self.db.read(lambda conn: conn.execute(
            f"SELECT {FILE_COLS} FROM files WHERE {where.sql()} ORDER BY seq", where.params).fetchall())
        return [to_file(r) for r in rows]

    async def delete_files(self, dataset_id: str, task_id: str) -> int:
        return await self.db.write(lambda conn: conn.execute(
            "DELETE FROM files WHERE dataset_id = ? AND task_id = ?", (dataset_id, task_id)).rowcount)

    # ------------------------------------------------------------ scratch

    async def add_scratch_file(self, f: ScratchFile) -> None:
        await self.db.write(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO scratch_files (path, dataset_id, job_index, size, sha512, created) "
            "VALUES (?, ?, ?, ?, ?, ?)", (f.path, f.dataset_id, f.job_index, f.size, f.sha512, f.created)))

    @staticmethod
    def _scratch_where(dataset_id: str, job_index: int | None) -> Where:
        where = Where().add("dataset_id = ?", dataset_id)
        if job_index is not None:
            where.add("job_index = ?", job_index)
        return where

    async def list_scratch_files(self, dataset_id: str, job_index: int | None = None) -> list[ScratchFile]:
        where = self._scratch_where(dataset_id, job_index)
        rows = await self.db.read(lambda conn: conn.execute(
            f"SELECT * FROM scratch_files WHERE {where.sql()} ORDER BY path", where.params).fetchall())
        return [to_scratch(r) for r in rows]

    async def delete_scratch_files(self, dataset_id: str, job_index: int | None = None) -> list[ScratchFile]:
        where = self._scratch_where(dataset_id, job_index)

        def op(conn: sqlite3.Connection) -> list[ScratchFile]:
            rows = conn.execute(f"DELETE FROM scratch_files WHERE {where.sql()} RETURNING *", where.params)
            return sorted((to_scratch(r) for r in rows), key=lambda f: f.path)
        return await self.db.write(op)

    # ------------------------------------------------------------ task stats

    async def add_task_stat(self, task_id: str, dataset_id: str, stats: dict[str, object]) -> str:
        checks.task_stats(stats)
        stat_id = new_id()
        await self.db.write(lambda conn: conn.execute(
            "INSERT INTO task_stats (task_stat_id, task_id, dataset_id, create_date, stats) VALUES (?, ?, ?, ?, ?)",
            (stat_id, task_id, dataset_id, nowstr(), dumps(stats))))
        return stat_id

    async def list_task_stats(self, *, task_id: str | None = None, dataset_id: str | None = None,
                              last: bool = False, opts: ListOptions = ListOptions()) -> Page:
        checks.task_stats_selection(task_id, dataset_id)
        where = Where()
        if task_id is not None:
            where.add("task_id = ?", task_id)
        if dataset_id is not None:
            where.add("dataset_id = ?", dataset_id)
        if last:  # newest stat of each task: no later row for the same task
            where.add("NOT EXISTS (SELECT 1 FROM task_stats s2 WHERE s2.task_id = task_stats.task_id "
                      "AND s2.seq > task_stats.seq)")
        return await self.db.read(lambda conn: paginate(
            conn, table="task_stats", columns="task_stat_id, task_id, dataset_id, create_date, stats",
            where=where, opts=opts, to_doc=lambda r: to_task_stat(r).to_doc(), id_field="task_stat_id"))

    async def get_task_stat(self, task_stat_id: str) -> TaskStat | None:
        row = await self.db.read(lambda conn: conn.execute(
            "SELECT * FROM task_stats WHERE task_stat_id = ?", (task_stat_id,)).fetchone())
        return None if row is None else to_task_stat(row)

    # ------------------------------------------------------------ provenance

    async def provenance(self, url: str) -> list[ProvenanceRecord]:
        rows = await self.db.read(lambda conn: conn.execute(
            """SELECT o.url, o.size, o.sha512, o.dataset_id, d.dataset, o.job_id, j.job_index, o.task_id,
                      t.name, o.attempt, o.instance_id, a.config_version, o.created
               FROM outputs o LEFT JOIN datasets d ON d.dataset_id = o.dataset_id
               LEFT JOIN jobs j ON j.job_id = o.job_id LEFT JOIN tasks t ON t.task_id = o.task_id
               LEFT JOIN attempts a ON a.task_id = o.task_id AND a.attempt = o.attempt
               WHERE o.url = ? ORDER BY o.seq""", (url,)).fetchall())
        return [ProvenanceRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] or "", r[9], r[10], r[11],
                                 r[12]) for r in rows]
