"""Datasets and their config versions.

Datasets (the unit a user submits) and the immutable config versions
attached to them.

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share).
"""
from __future__ import annotations

import abc
from typing import Any

from ..query import DatasetFilter, ListOptions, Page
from ..records import ConfigVersion, Dataset, NewDataset


class DatasetsRole(abc.ABC):
    """The datasets-and-configs part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def create_dataset(self, new: NewDataset) -> Dataset:
        """Create a dataset with the next sequential ``dataset`` number (atomic
        counter: concurrent creates get distinct consecutive numbers), status
        ``new.status``, ``start_date`` now, ``truncated`` false. ConflictError
        if ``new.dataset_id`` exists."""

    @abc.abstractmethod
    async def get_dataset(self, dataset_id: str) -> Dataset | None:
        """The dataset or None."""

    @abc.abstractmethod
    async def get_dataset_by_number(self, number: int) -> Dataset | None:
        """The dataset whose ``dataset`` number is ``number``, or None."""

    @abc.abstractmethod
    async def list_datasets(self, filter: DatasetFilter = DatasetFilter(),
                            opts: ListOptions = ListOptions()) -> Page:
        """Datasets matching every given filter field (lists = any of), oldest
        first (by number), projected to ``opts.keys``, paginated."""

    @abc.abstractmethod
    async def update_dataset(self, dataset_id: str, *, description: str | None = None,
                             priority: float | None = None, debug: bool | None = None,
                             always_active: bool | None = None) -> bool:
        """Set the given plain fields (None = leave). False if no such dataset."""

    @abc.abstractmethod
    async def set_jobs_submitted(self, dataset_id: str, jobs_submitted: int) -> Dataset:
        """Raise ``jobs_submitted`` and set ``tasks_submitted = jobs * tasks_per_job``
        in one step. InvalidArgumentError if it would decrease or the dataset is
        ``jobs_immutable``; NotFoundError if missing."""

    @abc.abstractmethod
    async def truncate_dataset(self, dataset_id: str) -> bool:
        """Mark ``truncated`` (no more jobs are materialized). InvalidArgumentError
        if the dataset is complete; False if missing."""

    @abc.abstractmethod
    async def set_dataset_status(self, dataset_id: str, status: str, *, force: bool = False) -> bool:
        """Guarded transition; ``status_changed`` updated. True iff it changed.
        InvalidArgumentError for an unknown status."""

    @abc.abstractmethod
    async def dataset_status_summary(self, filter: DatasetFilter = DatasetFilter()) -> dict[str, list[str]]:
        """{status: [dataset_id, ...]} for the matching datasets."""

    # ------------------------------------------------------------ config versions

    @abc.abstractmethod
    async def add_config_version(self, dataset_id: str, config: dict[str, Any], author: str,
                                 comment: str = "") -> int:
        """Append an immutable version (1, 2, ...; concurrent adds get distinct
        numbers) with created time and the sha256 of canonical JSON; return
        its number. NotFoundError if the dataset does not exist."""

    @abc.abstractmethod
    async def get_config(self, dataset_id: str, version: int | None = None) -> ConfigVersion | None:
        """That version, or the newest when ``version`` is None; None if absent."""

    @abc.abstractmethod
    async def list_config_versions(self, dataset_id: str) -> list[ConfigVersion]:
        """All versions, oldest first (with their configs)."""
