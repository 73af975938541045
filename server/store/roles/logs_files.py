"""Logs, per-job files and scratch-store records.

Logs (chunked when large), the per-job files of ``/datasets/{id}/files``,
and the records of files kept in the server's scratch store.

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share).
"""
from __future__ import annotations

import abc
from typing import Sequence

from ..query import ListOptions, LogFilter, Page
from ..records import DatasetFile, Log, LogRef, NewLog, ScratchFile


class LogsFilesRole(abc.ABC):
    """The logs-and-files part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def add_log(self, log: NewLog) -> str:
        """Store a log; over 1 MB it is kept out of the hot table in chunks and
        reassembled on read. Returns the log_id."""

    @abc.abstractmethod
    async def append_log(self, log_id: str, chunk: str) -> int:
        """Append to a running log (streaming); returns the new size in
        characters. NotFoundError if the log does not exist."""

    @abc.abstractmethod
    async def get_log(self, log_id: str) -> Log | None: ...

    @abc.abstractmethod
    async def list_logs(self, filter: LogFilter = LogFilter(), opts: ListOptions = ListOptions()) -> Page:
        """Logs in creation order, projected, paginated (``data`` reassembled)."""

    @abc.abstractmethod
    async def task_logs(self, task_id: str, *, num: int | None = None, group: bool = False,
                        order: str = "desc") -> list[Log]:
        """Logs of a task by timestamp (``order`` asc|desc); ``group``: only the
        newest log of each name; ``num``: at most that many."""

    @abc.abstractmethod
    async def delete_log(self, log_id: str) -> bool: ...

    @abc.abstractmethod
    async def delete_logs(self, *, dataset_id: str | None = None, task_id: str | None = None) -> int:
        """Delete logs (with their chunks) of a task or dataset; returns count."""

    @abc.abstractmethod
    async def logs_before(self, before: str, *, name: str | None = None, dataset_id: str | None = None,
                          after: tuple[str, str] | None = None, limit: int = 1000) -> list[LogRef]:
        """Logs stamped before ``before`` (a ``TIME_FORMAT`` string), of one name
        and/or dataset when given, oldest first by (timestamp, log_id), at most
        ``limit``, starting past the ``after`` = (timestamp, log_id) cursor.
        One range of the (name, timestamp) or (dataset_id, timestamp) index."""

    @abc.abstractmethod
    async def log_names(self) -> dict[str, tuple[int, str]]:
        """{log name: (how many logs, oldest timestamp)} over all logs."""

    @abc.abstractmethod
    async def delete_log_ids(self, log_ids: Sequence[str]) -> int:
        """Delete these logs with their chunks (unknown ids are ignored); the count removed."""

    # ------------------------------------------------------------ files

    @abc.abstractmethod
    async def add_file(self, dataset_id: str, remote: str, movement: str, *, task_id: str | None = None,
                       job_index: int | None = None, task_name: str | None = None, local: str = "",
                       type: str = "permanent", transfer: str = "true",
                       compression: bool = False) -> DatasetFile:
        """Add a per-job file, to ``task_id`` or to the task resolved from
        (job_index, task_name). NotFoundError when that task does not exist."""

    @abc.abstractmethod
    async def list_files(self, dataset_id: str, task_id: str | None = None) -> list[DatasetFile]: ...

    @abc.abstractmethod
    async def delete_files(self, dataset_id: str, task_id: str) -> int: ...

    # ------------------------------------------------------------ scratch-store records

    @abc.abstractmethod
    async def add_scratch_file(self, f: ScratchFile) -> None:
        """Record (or replace, keyed by path) a scratch-store file."""

    @abc.abstractmethod
    async def list_scratch_files(self, dataset_id: str, job_index: int | None = None) -> list[ScratchFile]:
        """Files of one job (``job_index``) or all of a dataset (None)."""

    @abc.abstractmethod
    async def delete_scratch_files(self, dataset_id: str, job_index: int | None = None) -> list[ScratchFile]:
        """Forget those records; return them so the caller removes the files."""
