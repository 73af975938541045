"""The runner's own log of an attempt: staging, argv, exit codes, kills.

Line-buffered and flushed per line, so the log is complete up to the moment a
pilot is killed, and its tail can be used to classify the failure.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from pilot.runner.streaming import Streamer


class StdLog:
    def __init__(self, path: Path, streamer: Streamer | None = None) -> None:
        self.path = path
        self._streamer = streamer
        self._file: TextIO = open(path, "a", encoding="utf-8", buffering=1)

    def write(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        line = f"{stamp}Z {message}\n"
        self._file.write(line)
        if self._streamer is not None:
            self._streamer.feed("stdlog", line)

    def close(self) -> None:
        self._file.close()


def tail(path: Path, limit: int = 64 * 1024, start: int = 0) -> str:
    """The last ``limit`` bytes of ``path`` written after offset ``start``, as text."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            end = handle.tell()
            handle.seek(max(start, end - limit))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
