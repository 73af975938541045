"""Per-job files, scratch-file records, task stats and provenance by output URL."""
from __future__ import annotations

from typing import Any

from .. import checks
from ..interface import NotFoundError
from ..query import ListOptions, Page
from ..records import DatasetFile, ProvenanceRecord, ScratchFile, TaskStat, new_id, nowstr
from .base import Doc, MongoBase
from .docs import file_from, scratch_from, stat_from
from .listing import page


class FilesMixin(MongoBase):
    # ------------------------------------------------------------ /datasets/{id}/files

    async def add_file(self, dataset_id: str, remote: str, movement: str, *, task_id: str | None = None,
                       job_index: int | None = None, task_name: str | None = None, local: str = "",
                       type: str = "permanent", transfer: str = "true",
                       compression: bool = False) -> DatasetFile:
        checks.file_args(remote, movement, task_id, job_index, task_name)
        if task_id is not None:
            task = await self._tasks.find_one({"_id": task_id, "dataset_id": dataset_id}, {"_id": 1})
            if task is None:
                raise NotFoundError(f"task {task_id} not found in dataset {dataset_id}")
        else:  # checks.file_args made sure both are given
            task = await self._tasks.find_one({"dataset_id": dataset_id, "job_index": job_index,
                                               "name": task_name}, {"_id": 1})
            if task is None:
                raise NotFoundError(f"no task {task_name!r} in job {job_index} of dataset {dataset_id}")
            task_id = task["_id"]
        record = DatasetFile(file_id=new_id(), dataset_id=dataset_id, task_id=task_id, remote=remote,
                             movement=movement, local=local, type=type, transfer=transfer,
                             compression=compression)
        seq = await self._next_seq("file")
        await self._files.insert_one({"_id": record.file_id, **record.to_doc(), "seq": seq})
        return record

    async def list_files(self, dataset_id: str, task_id: str | None = None) -> list[DatasetFile]:
        query: Doc = {"dataset_id": dataset_id}
        if task_id is not None:
            query["task_id"] = task_id
        return [file_from(d) for d in await self._files.find(query).sort("seq", 1).to_list()]

    async def delete_files(self, dataset_id: str, task_id: str) -> int:
        result = await self._files.delete_many({"dataset_id": dataset_id, "task_id": task_id})
        return result.deleted_count

    # ------------------------------------------------------------ scratch store records

    async def add_scratch_file(self, f: ScratchFile) -> None:
        doc = {"dataset_id": f.dataset_id, "path": f.path, "size": f.size, "sha512": f.sha512,
               "job_index": f.job_index, "created": f.created}
        await self._scratch.replace_one({"_id": f.path}, {"_id": f.path, **doc}, upsert=True)

    def _scratch_query(self, dataset_id: str, job_index: int | None) -> Doc:
        query: Doc = {"dataset_id": dataset_id}
        if job_index is not None:
            query["job_index"] = job_index
        return query

    async def list_scratch_files(self, dataset_id: str, job_index: int | None = None) -> list[ScratchFile]:
        docs = await self._scratch.find(self._scratch_query(dataset_id, job_index)).sort("_id", 1).to_list()
        return [scratch_from(d) for d in docs]

    async def delete_scratch_files(self, dataset_id: str, job_index: int | None = None) -> list[ScratchFile]:
        docs = await self._scratch.find(self._scratch_query(dataset_id, job_index)).sort("_id", 1).to_list()
        if docs:
            await self._scratch.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
        return [scratch_from(d) for d in docs]

    # ------------------------------------------------------------ task stats

    async def add_task_stat(self, task_id: str, dataset_id: str, stats: dict[str, Any]) -> str:
        checks.task_stats(stats)
        stat_id = new_id()
        seq = await self._next_seq("task_stat")
        await self._stats.insert_one({"_id": stat_id, "task_stat_id": stat_id, "task_id": task_id,
                                      "dataset_id": dataset_id, "create_date": nowstr(), "stats": stats,
                                      "seq": seq, "latest": True})
        # only the newest of a task keeps "latest" (guarded by seq: concurrent adds agree)
        await self._stats.update_many({"task_id": task_id, "latest": True, "seq": {"$lt": seq}},
                                      {"$unset": {"latest": ""}})
        return stat_id

    async def list_task_stats(self, *, task_id: str | None = None, dataset_id: str | None = None,
                              last: bool = False, opts: ListOptions = ListOptions()) -> Page:
        checks.task_stats_selection(task_id, dataset_id)
        query: Doc = {}
        if task_id is not None:
            query["task_id"] = task_id
        if dataset_id is not None:
            query["dataset_id"] = dataset_id
        if last:
            query["latest"] = True
        return await page(self._stats, query, opts, sort=[("seq", 1)],
                          to_doc=lambda d: stat_from(d).to_doc(), id_field="task_stat_id")

    async def get_task_stat(self, task_stat_id: str) -> TaskStat | None:
        doc = await self._stats.find_one({"_id": task_stat_id})
        return stat_from(doc) if doc else None

    # ------------------------------------------------------------ provenance

    async def provenance(self, url: str) -> list[ProvenanceRecord]:
        docs = await self._outputs.find({"url": url}).sort([("created", 1), ("_id", 1)]).to_list()
        if not docs:
            return []
        datasets = await self._datasets.find({"_id": {"$in": list({d["dataset_id"] for d in docs})}},
                                             {"dataset": 1}).to_list()
        numbers = {d["_id"]: d["dataset"] for d in datasets}
        return [ProvenanceRecord(url=d["url"], size=d["size"], sha512=d["sha512"], dataset_id=d["dataset_id"],
                                 dataset=numbers.get(d["dataset_id"]), job_id=d["job_id"],
                                 job_index=d.get("job_index"), task_id=d["task_id"], task_name=d["task_name"],
                                 attempt=d["attempt"], instance_id=d["instance_id"],
                                 config_version=d.get("config_version"), created=d["created"])
                for d in docs]
