"""WAL checkpoints off the writer thread.

A commit fsyncs the WAL once with ``synchronous=FULL`` (the default) and not
at all with NORMAL; a checkpoint (copying WAL frames into the database file)
fsyncs twice more, in either mode. SQLite's automatic
checkpoint runs inside the committing writer, so every few MB of writes one
claim would wait for two fsyncs and a burst of page writes (several ms on
ordinary disks): that is the p99 of the claim path. Here the writer's
autocheckpoint is off and this thread runs PASSIVE checkpoints on its own
connection shortly after commits; a PASSIVE checkpoint never blocks the
writer or readers. Under load that never pauses the WAL could only grow, so
the writer runs one checkpoint itself when the WAL passes ``WAL_LIMIT``.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from typing import Callable

from ..records import StoragePressure

WAL_LIMIT = 256 * 1024 * 1024
"""Bytes of WAL after which the writer checkpoints inline (bounds disk use)."""
INTERVAL = 0.2
"""Seconds between background checkpoints while writes keep coming."""


class Checkpointer:
    def __init__(self, path: str, connect: Callable[[str], sqlite3.Connection]) -> None:
        self.path = path
        self._connect = connect
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"sqlite-checkpoint:{path}", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Called after each commit: there is something to checkpoint."""
        self._dirty.set()

    def _loop(self) -> None:
        conn = self._connect(self.path)
        conn.execute("PRAGMA cache_size=-2048")  # copies WAL frames to the file: needs no cache of its own
        try:
            while not self._stop.is_set():
                if not self._dirty.wait(timeout=1.0):
                    continue
                self._dirty.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.OperationalError:
                    pass  # busy with another checkpointer (e.g. a second process): next round
                self._stop.wait(INTERVAL)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        self._thread.join()


def storage_pressure(path: str) -> StoragePressure:
    """Free space of the database's file system and the WAL's size."""
    try:
        free: int | None = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except OSError:
        free = None
    try:
        wal = os.path.getsize(path + "-wal")
    except OSError:
        wal = 0
    return StoragePressure(free_bytes=free, log_bytes=wal, log_limit=WAL_LIMIT)


def wal_too_big(path: str) -> bool:
    try:
        return os.path.getsize(path + "-wal") > WAL_LIMIT
    except OSError:
        return False
