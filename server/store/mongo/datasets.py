"""Datasets, their immutable config versions and their read/write rights."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pymongo import DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from common import states

from ..interface import ConflictError, InvalidArgumentError, NotFoundError
from ..query import DatasetFilter, ListOptions, Page, check_statuses
from ..records import ConfigVersion, Dataset, DatasetRights, NewDataset, nowstr
from .. import checks
from ..rules import allowed_from, config_sha256, task_priority_offset
from .base import Doc, MongoBase
from .docs import config_from, dataset_from
from .listing import page


REBASE_BATCH = 1_000
"""Task offsets re-based per bulk write after a jobs_submitted change."""


def dataset_query(f: DatasetFilter) -> Doc:
    check_statuses(f.status, set(states.DATASET_STATUSES), "dataset")
    query: Doc = {}
    if f.status is not None:
        query["status"] = {"$in": list(f.status)}
    if f.groups is not None:
        query["group"] = {"$in": list(f.groups)}
    if f.users is not None:
        query["username"] = {"$in": list(f.users)}
    if f.dataset_ids is not None:
        query["_id"] = {"$in": list(f.dataset_ids)}
    return query


class DatasetsMixin(MongoBase):
    # ------------------------------------------------------------ datasets

    async def create_dataset(self, new: NewDataset) -> Dataset:
        dataset_id, tasks_submitted = checks.new_dataset(new)
        # Checked before taking a number so that the common conflict (a retried
        # create) does not burn a dataset number; the insert below still
        # decides a race.
        if await self._datasets.find_one({"_id": dataset_id}, {"_id": 1}) is not None:
            raise ConflictError(f"dataset {dataset_id} already exists")
        number = await self._next_seq("dataset")
        now = nowstr()
        tasks_submitted = (new.tasks_submitted if new.tasks_submitted is not None
                           else new.jobs_submitted * new.tasks_per_job)
        dataset = Dataset(
            dataset_id=dataset_id, dataset=number, description=new.description,
            jobs_submitted=new.jobs_submitted, tasks_submitted=tasks_submitted,
            tasks_per_job=new.tasks_per_job, group=new.group, username=new.username,
            status=new.status, start_date=now, status_changed=now, priority=new.priority,
            debug=new.debug, jobs_immutable=new.jobs_immutable, truncated=False,
            always_active=new.always_active)
        try:
            await self._datasets.insert_one({"_id": dataset_id, **dataset.to_doc()})
        except DuplicateKeyError:
            raise ConflictError(f"dataset {dataset_id} already exists") from None
        return dataset

    async def get_dataset(self, dataset_id: str) -> Dataset | None:
        doc = await self._datasets.find_one({"_id": dataset_id})
        return dataset_from(doc) if doc else None

    async def get_dataset_by_number(self, number: int) -> Dataset | None:
        doc = await self._datasets.find_one({"dataset": number})
        return dataset_from(doc) if doc else None

    async def list_datasets(self, filter: DatasetFilter = DatasetFilter(),
                            opts: ListOptions = ListOptions()) -> Page:
        return await page(self._datasets, dataset_query(filter), opts, sort=[("dataset", 1)],
                          to_doc=lambda d: dataset_from(d).to_doc(), id_field="dataset_id")

    async def update_dataset(self, dataset_id: str, *, description: str | None = None,
                             priority: float | None = None, debug: bool | None = None,
                             always_active: bool | None = None) -> bool:
        changes = {k: v for k, v in (("description", description), ("priority", priority),
                                     ("debug", debug), ("always_active", always_active)) if v is not None}
        if not changes:
            return await self._datasets.find_one({"_id": dataset_id}, {"_id": 1}) is not None
        result = await self._datasets.update_one({"_id": dataset_id}, {"$set": changes})
        return result.matched_count > 0

    async def set_jobs_submitted(self, dataset_id: str, jobs_submitted: int) -> Dataset:
        checks.whole_number("jobs_submitted", jobs_submitted)
        current = await self.get_dataset(dataset_id)
        if current is None:
            raise NotFoundError(f"dataset {dataset_id} not found")
        checks.jobs_submitted_change(dataset_id, immutable=current.jobs_immutable,
                                     current=current.jobs_submitted, asked=jobs_submitted)
        # One document: the guard (never decrease) and both fields change atomically.
        doc = await self._datasets.find_one_and_update(
            {"_id": dataset_id, "jobs_submitted": {"$lte": jobs_submitted}, "jobs_immutable": False},
            {"$set": {"jobs_submitted": jobs_submitted,
                      "tasks_submitted": jobs_submitted * current.tasks_per_job}},
            return_document=ReturnDocument.AFTER)
        if doc is None:  # a concurrent call raised it further meanwhile
            raise InvalidArgumentError(f"jobs_submitted of dataset {dataset_id} can only increase")
        if jobs_submitted > current.jobs_submitted and not current.truncated:
            # New jobs to run: a finished dataset is processing again.
            reopened = await self._datasets.find_one_and_update(
                {"_id": dataset_id, "status": {"$in": sorted(states.REOPENED_BY_MORE_JOBS)}},
                {"$set": {"status": "processing", "status_changed": nowstr()}}, return_document=ReturnDocument.AFTER)
            doc = reopened or doc
        if jobs_submitted != current.jobs_submitted:
            await self._rebase_offsets(dataset_id, current.tasks_per_job, jobs_submitted)
        return dataset_from(doc)

    async def _rebase_offsets(self, dataset_id: str, tasks_per_job: int, jobs_submitted: int) -> None:
        """The job_index term of the task priority is relative to
        jobs_submitted: re-base the offsets of the tasks not queued yet
        (queued and finished ones keep their value), in batches."""
        cursor = self._tasks.find({"dataset_id": dataset_id, "status": {"$in": ["idle", "waiting"]}},
                                      {"job_index": 1, "task_index": 1}).batch_size(REBASE_BATCH)
        ops: list[UpdateOne] = []
        async for d in cursor:
            offset = task_priority_offset(d["job_index"], d["task_index"], tasks_per_job, jobs_submitted)
            ops.append(UpdateOne({"_id": d["_id"]}, {"$set": {"prio_offset": offset}}))
            if len(ops) >= REBASE_BATCH:
                await self._tasks.bulk_write(ops, ordered=False)
                ops = []
        if ops:
            await self._tasks.bulk_write(ops, ordered=False)

    async def truncate_dataset(self, dataset_id: str) -> bool:
        doc = await self._datasets.find_one({"_id": dataset_id}, {"status": 1})
        if doc is None:
            return False
        checks.truncatable(dataset_id, doc["status"])
        result = await self._datasets.update_one(
            {"_id": dataset_id, "status": {"$ne": "complete"}}, {"$set": {"truncated": True}})
        if result.matched_count == 0:  # it completed meanwhile
            checks.truncatable(dataset_id, "complete")
        return True

    async def set_dataset_status(self, dataset_id: str, status: str, *, force: bool = False) -> bool:
        checks.check_status("dataset", status)
        allowed = sorted(allowed_from("dataset", status, force) - {status})
        result = await self._datasets.update_one(
            {"_id": dataset_id, "status": {"$in": allowed}},
            {"$set": {"status": status, "status_changed": nowstr()}})
        return result.modified_count > 0

    async def dataset_status_summary(self, filter: DatasetFilter = DatasetFilter()) -> dict[str, list[str]]:
        docs = await self._datasets.find(dataset_query(filter), {"status": 1}).sort("dataset", 1).to_list()
        summary: dict[str, list[str]] = {}
        for status in states.DATASET_STATUSES:
            ids = [d["_id"] for d in docs if d.get("status") == status]
            if ids:
                summary[status] = ids
        return summary

    # ------------------------------------------------------------ config versions

    async def add_config_version(self, dataset_id: str, config: dict[str, Any], author: str,
                                 comment: str = "") -> int:
        checks.config(config)
        if await self._datasets.find_one({"_id": dataset_id}, {"_id": 1}) is None:
            raise NotFoundError(f"dataset {dataset_id} not found")
        config_json = json.dumps(config, ensure_ascii=False)
        sha = config_sha256(config)
        # The unique (dataset_id, version) index arbitrates concurrent adds: the
        # loser sees a duplicate key and takes the next number. Versions stay
        # gap-free (a counter would leave a hole after a crash).
        while True:
            newest = await self._configs.find_one({"dataset_id": dataset_id}, {"version": 1},
                                                  sort=[("version", DESCENDING)])
            version = (newest["version"] if newest else 0) + 1
            try:
                await self._configs.insert_one({
                    "_id": f"{dataset_id}:{version}", "dataset_id": dataset_id, "version": version,
                    "config_json": config_json, "author": author, "comment": comment,
                    "created": nowstr(), "sha256": sha})
            except DuplicateKeyError:
                continue
            return version

    async def get_config(self, dataset_id: str, version: int | None = None) -> ConfigVersion | None:
        if version is None:
            doc = await self._configs.find_one({"dataset_id": dataset_id}, sort=[("version", DESCENDING)])
        else:
            doc = await self._configs.find_one({"_id": f"{dataset_id}:{version}"})
        return config_from(doc) if doc else None

    async def list_config_versions(self, dataset_id: str) -> list[ConfigVersion]:
        docs = await self._configs.find({"dataset_id": dataset_id}).sort("version", 1).to_list()
        return [config_from(d) for d in docs]

    # ------------------------------------------------------------ rights

    async def set_dataset_rights(self, dataset_id: str, rights: DatasetRights) -> None:
        doc = {"read_groups": list(rights.read_groups), "write_groups": list(rights.write_groups),
               "read_users": list(rights.read_users), "write_users": list(rights.write_users)}
        await self._rights.replace_one({"_id": dataset_id}, {"_id": dataset_id, **doc}, upsert=True)

    async def rights_for(self, dataset_ids: Sequence[str]) -> dict[str, DatasetRights]:
        if not dataset_ids:
            return {}
        docs = await self._rights.find({"_id": {"$in": list(dataset_ids)}}).to_list()
        return {d["_id"]: DatasetRights(read_groups=d.get("read_groups", []),
                                        write_groups=d.get("write_groups", []),
                                        read_users=d.get("read_users", []),
                                        write_users=d.get("write_users", [])) for d in docs}
