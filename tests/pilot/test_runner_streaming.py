"""Live log streaming: never blocks or breaks the task; the stored logs stay complete."""
from __future__ import annotations

import asyncio
from pathlib import Path

from pilot.runner.streaming import Streamer
from tests.pilot.runner_plans import PY, one_module, run


async def test_a_slow_consumer_loses_chunks_with_a_marker_not_the_task() -> None:
    received: list[tuple[str, str]] = []
    release = asyncio.Event()

    async def slow(name: str, text: str) -> None:
        await release.wait()
        received.append((name, text))

    streamer = Streamer(slow, max_pending=100)
    streamer.start()
    for i in range(50):
        streamer.feed("stdout", f"line {i:03d}\n")  # 9 characters each: only 11 fit
    release.set()
    await asyncio.sleep(0.05)  # the consumer catches up
    streamer.feed("stdout", "after\n")
    streamer.feed("stdout", "y" * 200)  # too big even for an empty queue: dropped
    await streamer.close()
    text = "".join(t for _, t in received)
    assert text.startswith("line 000\n") and "line 049" not in text
    assert "[frazil: 351 characters not streamed; the stored stdout has them]\nafter\n" in text
    assert text.endswith("[frazil: 200 characters not streamed; the stored stdout has them]\n")


async def test_streaming_stops_after_the_callback_fails() -> None:
    calls: list[str] = []

    async def flaky(name: str, text: str) -> None:
        calls.append(text)
        raise OSError("connection refused")

    streamer = Streamer(flaky)
    streamer.start()
    streamer.feed("stderr", "a\n")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    streamer.feed("stderr", "b\n")
    await streamer.close()
    assert calls == ["a\n"] and streamer.error == "OSError: connection refused"


async def test_a_long_line_without_newline_is_streamed_and_stored(tmp_path: Path) -> None:
    chunks: list[str] = []

    async def callback(name: str, text: str) -> None:
        if name == "stdout":
            chunks.append(text)

    code = "import sys; sys.stdout.write('x' * 200000); sys.stdout.flush()"
    result = await run(one_module([PY, "-c", code]), tmp_path, log_callback=callback)
    assert Path(result.stdout).read_text() == "x" * 200000
    assert "".join(chunks) == "x" * 200000
