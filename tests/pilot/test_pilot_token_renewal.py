"""A real pilot outlives its token: it starts with a register-only token
(``frazil token create --role pilot``), works with the short-lived token its
registration answers, and switches to the renewed one each heartbeat brings,
so it keeps claiming and reporting long after the first one expired."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from server.auth.tokens import LEEWAY_SECONDS
from tests.pilot.pilot_support import attempts_of, deploy, tasks_of, wait_for
from tests.pilot.test_pilot_reliability import _all_complete, _config


@pytest.mark.slow
async def test_a_pilot_runs_longer_than_its_token_lifetime(tmp_path: Path) -> None:
    # a 3 s lease: heartbeats every second, and the token lives 3 + 1 = 4 s (the
    # setting asks for less; a token never lives less than a lease and a heartbeat)
    d = deploy(tmp_path, FRAZIL_LEASE_SECONDS="3", FRAZIL_PILOT_TOKEN_SECONDS="1",
               FRAZIL_GRID_FILE_ROOTS=str(tmp_path / "out"))  # a hand-started pilot is a grid pilot
    try:
        dataset_id = await d.submit(_config(tmp_path, 4.0, tmp_path / "out"), jobs=4)
        began = time.monotonic()
        # one core: the four 4 s tasks run one after the other, 16 s and more in all
        d.pilot("p1", "--cpus", "1", "--memory", "1", "--disk", "5", "--idle-timeout", "20")
        await wait_for(lambda: _all_complete(d, dataset_id, 4), 120, "the four tasks to complete on the one pilot",
                       lambda: d.log("p1")[-3000:])
        assert time.monotonic() - began > 4 + LEEWAY_SECONDS + 4  # well past the first token's end
        pilots = set()
        for row in await tasks_of(d.db, dataset_id):
            attempts = await attempts_of(d.db, row["task_id"])
            assert [a.status for a in attempts] == ["complete"], attempts  # each claimed and reported once
            pilots.update(a.pilot_id for a in attempts)
        assert len(pilots) == 1  # one registration: the pilot never lost its identity
        log = d.log("p1")
        assert "no longer accepts this pilot's token" not in log and "refused" not in log, log[-3000:]
    finally:
        d.stop_all()
