"""SQLite connections: one writer thread, a small pool of readers.

Why a dedicated writer thread: SQLite allows one writer at a time, and the
event loop must never block on disk. Every write is a function handed to the
writer thread, which runs it inside ``BEGIN IMMEDIATE`` (taking the write
lock up front, so a transaction never fails half-way on a lock upgrade).

Group commit: when several writes are waiting, the thread runs them in one
transaction, each inside its own SAVEPOINT so a failing operation rolls back
alone, and answers all of them only after the single COMMIT. With 64 pilots
claiming at once this turns 64 fsync-bound commits into one, which is what
makes thousands of claims per second possible; each operation is still
atomic and nothing is reported before it is durable: the answers are handed
back only after COMMIT returned, and with ``synchronous=FULL`` (the default)
COMMIT returns only after the WAL frames of the transaction were written and
fsync'ed. tests/store/test_durable_commit.py shows it from the system calls
of a real server (strace): each HTTP reply to a complete follows an fsync of
the WAL that holds it.

Readers are a few threads with a connection each, fed by one queue; WAL lets
them read a consistent snapshot while the writer works.

Hand-offs are the claim path's main cost after SQLite itself (a claim and a
report are a handful of small reads and writes), so both directions are kept
lean: a plain queue to the threads instead of an executor (no
concurrent.futures objects per read), and one wake-up of the event loop per
write group instead of one per operation.

Pragmas (applied to every connection):
* ``journal_mode=WAL``: readers never block the writer and vice versa.
* ``synchronous=FULL`` (default, ``durable=True``; the server's
  ``durable_commits`` setting): every COMMIT fsyncs the WAL before it
  returns, so an acknowledged write survives a crash of the process
  (SIGKILL), of the operating system and a power loss (as far as the disk
  honours fsync). One fsync per group, not per operation: under load the
  group commit folds up to ``MAX_GROUP`` writes into one fsync.
  ``synchronous=NORMAL`` (``durable=False``, opt-out for speed): the WAL is
  written but not fsync'ed at COMMIT; an acknowledged write survives a crash
  of the process (the pages are in the OS page cache), but an OS crash or
  power loss can drop the last commits since the previous checkpoint (never
  corrupt the file: WAL frames are checksummed).
* what survives what, in both modes: a SIGKILL of the server loses nothing
  acknowledged; an unacknowledged write (the reply never left) is either all
  there or not at all; a checkpoint (checkpoint.py) fsyncs the database file
  whatever the mode.
* ``cache_size=-65536`` (64 MiB) on the writer: keeps the claim-path indexes
  and the task_id index hot with a million tasks; 16 MiB on each reader
  (listings and counts; the mmap below serves them too).
* ``mmap_size=67108864`` (64 MiB): reads go through the OS page cache
  without copying. Mapped pages count in the server's RSS once per
  connection, so the mapping is kept small: with 256 MiB a 1,000,000-task
  store took the RSS to ~590 MB while it was materialized (issue 17: at most
  500 MB).
* ``temp_store=MEMORY``: sorts and temporary B-trees of listings off disk.
* ``busy_timeout=10000``: another process (a CLI, a test) holding the lock
  briefly makes us wait rather than fail.
* the writer's ``wal_autocheckpoint`` is off: checkpoints (the only fsyncs)
  run in a background thread, see checkpoint.py.
"""
from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from typing import Any, Callable, TypeVar

from .checkpoint import WAL_LIMIT, Checkpointer, wal_too_big

T = TypeVar("T")

READER_CACHE = -16384
"""Page cache of a reader connection (KiB, negative as SQLite wants it)."""

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA cache_size=-65536",
    "PRAGMA mmap_size=67108864",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA busy_timeout=10000",
)

MAX_GROUP = 128
"""Most operations folded into one transaction (bounds the latency a long
group adds to its first member)."""


def connect(path: str, durable: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT ourselves);
    ``durable``: ``synchronous=FULL``, else NORMAL."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    for pragma in PRAGMAS:
        conn.execute(pragma)
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    return conn


_STOP = object()


class Database:
    """The writer thread and reader pool of one SQLite file."""

    def __init__(self, path: str, readers: int = 2, *, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name=f"sqlite-writer:{path}", daemon=True)
        self._read_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._readers = [threading.Thread(target=self._read_loop, name=f"sqlite-reader-{i}:{path}", daemon=True)
                         for i in range(readers)]
        self._closed = False
        self._checkpointer = Checkpointer(path, connect)
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._writer.start()
        self._started.wait()
        if self._start_error is not None:
            self._checkpointer.stop()
            raise self._start_error
        for reader in self._readers:
            reader.start()

    # -------------------------------------------------------------- writes

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` atomically in the writer thread; its result or exception."""
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, future, loop))
        return await future

    def _write_loop(self) -> None:
        try:
            conn = connect(self.path, self.durable)
        except BaseException as exc:  # surfaced by __init__
            self._start_error = exc
            self._started.set()
            return
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer thread does it
        # a WAL that grew past the limit (checkpoints behind) shrinks back once they catch up, so
        # its size tells whether the store is behind now (materialization stops while it is)
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT // 4}")
        self._started.set()
        groups = 0
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                group = [item]
                stop = False
                while len(group) < MAX_GROUP:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    group.append(nxt)
                self._run_group(conn, group)
                self._checkpointer.poke()
                groups += 1
                if groups % 256 == 0 and wal_too_big(self.path):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                if stop:
                    return
        finally:
            conn.close()

    @staticmethod
    def _run_group(conn: sqlite3.Connection, group: list[Any]) -> None:
        """Run a group in one transaction and answer every member after COMMIT.

        Optimistic first: no savepoints (two statements per operation saved),
        since operations rarely fail. If one raises, the whole transaction is
        rolled back and the group runs again with each operation in its own
        savepoint, so the failing one is undone alone. Operations are
        functions of the database state only, so running one twice is safe.
        """
        results = _execute(conn, group, isolate=False)
        if results is None:
            results = _execute(conn, group, isolate=True)
        assert results is not None
        by_loop: dict[asyncio.AbstractEventLoop, list[_Result]] = {}
        for result in results:
            by_loop.setdefault(result[1], []).append(result)
        for loop, answers in by_loop.items():  # one wake-up per loop, not per operation
            _call_in(loop, _answer, answers)

    # -------------------------------------------------------------- reads

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on a reader connection inside one read transaction
        (one consistent snapshot for all its statements)."""
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._read_queue.put((fn, future, loop))
        return await future

    def _read_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                item = self._read_queue.get()
                if item is _STOP:
                    return
                fn, future, loop = item
                try:
                    if conn is None:
                        conn = connect(self.path)
                        conn.execute("PRAGMA query_only=ON")
                        conn.execute(f"PRAGMA cache_size={READER_CACHE}")
                    conn.execute("BEGIN")
                    try:
                        value = fn(conn)
                    finally:
                        conn.execute("COMMIT")
                except BaseException as exc:  # answered to the caller, the thread goes on
                    _call_in(loop, _set_exception, future, exc)
                else:
                    _call_in(loop, _set_result, future, value)
        finally:
            if conn is not None:
                conn.close()

    # -------------------------------------------------------------- lifecycle

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._checkpointer.stop)
        for _ in self._readers:
            self._read_queue.put(_STOP)
        for reader in self._readers:
            await asyncio.to_thread(reader.join)


_Result = tuple[Any, Any, Any, "BaseException | None"]  # future, loop, value, exception


def _execute(conn: sqlite3.Connection, group: list[Any], isolate: bool) -> list[_Result] | None:
    """One transaction over ``group``; None when an operation failed while not
    ``isolate``-d (everything was rolled back: run again isolated)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        return [(future, loop, None, exc) for _, future, loop in group]
    results: list[_Result] = []
    for fn, future, loop in group:
        if isolate:
            conn.execute("SAVEPOINT op")
        try:
            value = fn(conn)
        except BaseException as exc:
            if not isolate:
                conn.execute("ROLLBACK")
                return [(future, loop, None, exc)] if len(group) == 1 else None
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            results.append((future, loop, None, exc))
            continue
        if isolate:
            conn.execute("RELEASE op")
        results.append((future, loop, value, None))
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return [(future, loop, None, exc) for future, loop, _, _ in results]
    return results


def _call_in(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """Hand a result back to its event loop; a loop that closed meanwhile
    (its caller gave up) must not take the store's thread down."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        pass


def _answer(results: list[_Result]) -> None:
    for future, _, value, exc in results:
        if exc is None:
            _set_result(future, value)
        else:
            _set_exception(future, exc)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
