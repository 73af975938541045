"""Stage-in at a scope's entry and stage-out at its exit.

Scopes nest steering → task → tray iteration → module, so the runner calls
:func:`stage_in` when it enters a scope and :func:`stage_out` when it leaves
it. Transfers block (file copies, curl), so they run in a worker thread and
the event loop keeps streaming logs and monitoring other tasks meanwhile.
"""
from __future__ import annotations

import asyncio
import os
import stat

from common.plan.records import DataTransfer
from typing import Mapping

from common.transfer import RetryPolicy, Scheme, TransferError, TransferRecord, transfer_in, transfer_out
from pilot.runner.stdlog import StdLog
from pilot.runner.workdir import WorkDir


class StagingFailed(Exception):
    """A required file could not be moved; the attempt ends as a transfer failure."""

    def __init__(self, record: TransferRecord, entry: DataTransfer, kind: str = "transfer") -> None:
        where = f" ({entry.path})" if entry.path else ""
        super().__init__(f"{'stage-in' if record.direction == 'in' else 'stage-out'} "
                         f"of {entry.url}{where} failed: {record.error}")
        self.record = record
        self.entry = entry
        self.kind = kind
        """"transfer", or "credentials" when the storage refused the token."""


async def _move(entry: DataTransfer, direction: str, workdir: WorkDir, stdlog: StdLog,
                retry: RetryPolicy | None, schemes: Mapping[str, Scheme] | None = None) -> TransferRecord:
    try:
        local = workdir.path(entry.local)
    except ValueError as exc:
        record = TransferRecord(url=entry.url, local=entry.local, direction=direction,
                                error=str(exc))
        raise StagingFailed(record, entry) from None
    try:
        if direction == "in":
            record = await asyncio.to_thread(transfer_in, entry.url, local,
                                             optional=entry.optional, retry=retry, schemes=schemes)
        else:
            record = await asyncio.to_thread(transfer_out, local, entry.url,
                                             optional=entry.optional, retry=retry, schemes=schemes)
    except TransferError as exc:
        record = TransferRecord(url=entry.url, local=str(local), direction=direction,
                                error=exc.reason, attempts=exc.attempts)
        stdlog.write(f"{'stage-in' if direction == 'in' else 'stage-out'} FAILED "
                     f"{entry.url} <-> {entry.local}: {exc.reason}")
        raise StagingFailed(record, entry, exc.kind) from None
    record.local = entry.local
    if record.skipped:
        stdlog.write(f"skipped optional {'input' if direction == 'in' else 'output'} "
                     f"{entry.local} ({entry.url}): {record.error}")
    else:
        arrow = f"{entry.url} -> {entry.local}" if direction == "in" else f"{entry.local} -> {entry.url}"
        stdlog.write(f"{'stage-in' if direction == 'in' else 'stage-out'} {arrow}: "
                     f"{record.size} bytes, sha512 {record.sha512}, {record.attempts} attempt(s)")
    return record


async def stage_in(entries: list[DataTransfer], workdir: WorkDir, stdlog: StdLog,
                   retry: RetryPolicy | None = None,
                   schemes: Mapping[str, Scheme] | None = None) -> list[TransferRecord]:
    return [await _move(e, "in", workdir, stdlog, retry, schemes) for e in entries if e.is_input]


async def stage_out(entries: list[DataTransfer], workdir: WorkDir, stdlog: StdLog,
                    retry: RetryPolicy | None = None,
                    schemes: Mapping[str, Scheme] | None = None) -> list[TransferRecord]:
    return [await _move(e, "out", workdir, stdlog, retry, schemes) for e in entries if e.is_output]


async def fetch_executables(entries: list[DataTransfer], workdir: WorkDir, stdlog: StdLog,
                            retry: RetryPolicy | None = None,
                            schemes: Mapping[str, Scheme] | None = None) -> list[TransferRecord]:
    """Programs named by URL (``src``, first ``env_shell`` word): downloaded and made executable."""
    records = []
    for entry in entries:
        record = await _move(entry, "in", workdir, stdlog, retry, schemes)
        if not record.skipped:
            path = workdir.path(entry.local)
            os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        records.append(record)
    return records
