"""CPU-heavy config work off the event loop: a pool of worker processes.

Checking a submitted config — parsing it, filling defaults, the schema, and
planning every task for the first and the last job with all its macros — is
pure CPU. Run on the event loop, one hostile config froze every request
(``/healthz``, pilot claims) for tens of seconds. Here it runs in a
``ProcessPoolExecutor`` made by :func:`service` (a ``cleanup_ctx``). The
work is bounded by the macro budget inside it (common.macros.budget,
``settings.config_check_seconds`` of CPU); the caller also stops waiting
after a wall-clock limit (a loaded machine, a queue of big configs) and
answers that the check took too long. The worker is left to finish that
check rather than killed: it may be serving nobody, but killing it would
also fail the other checks the pool runs. A worker that dies (out of
memory) breaks the pool; it is made anew for the next request.

Workers come from a ``forkserver`` that has the config modules imported, so a
new worker costs a fork, not an interpreter start. Without a pool (the CLI,
the action worker's own checks) the work runs inline.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, TypeVar

from aiohttp import web

from server.keys import CONFIG_POOL, SETTINGS

log = logging.getLogger("frazil.config_pool")
T = TypeVar("T")
PRELOAD = ["server.scheduling.config_work"]


class ConfigWorkTimeout(ValueError):
    """The config work ran past the pool's wall-clock limit (a 400 / action error)."""


@dataclass
class ConfigPool:
    workers: int
    timeout: float
    """Wall-clock seconds one piece of work may take (queueing for a worker included)."""
    runs: int = 0
    """Pieces of work done in the pool (tests check the work went there)."""
    _executor: ProcessPoolExecutor | None = field(default=None, repr=False)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(PRELOAD)
            else:
                context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._executor

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker process; ConfigWorkTimeout past ``timeout``."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool(), fn, *args)
        try:
            result = await asyncio.wait_for(future, self.timeout)  # cancels it if it has not started
        except asyncio.TimeoutError:
            raise ConfigWorkTimeout(f"checking the config took longer than {self.timeout:g} s (the server is "
                                    "busy, or the config is very large); try again or simplify it") from None
        except BrokenProcessPool:  # a worker died (out of memory?): a fresh pool for the next request
            self.restart()
            raise ConfigWorkTimeout("the config check's worker process died (out of memory?); simplify the "
                                    "config") from None
        self.runs += 1
        return result

    def restart(self) -> None:
        """Stop the workers and start afresh on next use (a broken pool, shutdown)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # The executor cannot stop a running call; its processes can be.
        for process in list(getattr(executor, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.restart()


async def run_config_work(pool: ConfigPool | None, fn: Callable[..., T], *args: Any) -> T:
    """In the pool when there is one, else inline (CLI, tests of the pieces)."""
    if pool is None:
        return fn(*args)
    return await pool.run(fn, *args)


async def service(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the server's config pool (workers start on first use)."""
    settings = app[SETTINGS]
    workers = settings.config_workers or min(4, os.cpu_count() or 1)
    pool = ConfigPool(workers=workers, timeout=settings.config_check_seconds * 6 + 30)
    app[CONFIG_POOL] = pool
    yield
    pool.close()
