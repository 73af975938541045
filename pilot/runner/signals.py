"""SIGTERM/SIGINT → a stop event: eviction ends tasks cleanly instead of killing the pilot."""
from __future__ import annotations

import asyncio
import signal
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def stop_on_signals(stop_event: asyncio.Event,
                    signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """While inside, the listed signals set ``stop_event`` (call from the running loop)."""
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, stop_event.set)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
