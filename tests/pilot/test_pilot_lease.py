"""Leases and heartbeats agree: the server says its lease and heartbeat
interval at registration, and a real pilot heartbeats within a third of the
lease from the first heartbeat on, so a 3 s lease never loses a live pilot
nor reaps its tasks — even when the server's heartbeat setting is longer
than the lease and the pilot was started with a slower ``--heartbeat``."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.pilot.pilot_support import attempts_of, deploy, tasks_of, wait_for, with_store
from tests.pilot.test_pilot_reliability import _all_complete, _config


@pytest.mark.slow
async def test_a_short_lease_never_loses_a_live_pilot(tmp_path: Path) -> None:
    d = deploy(tmp_path, FRAZIL_LEASE_SECONDS="3", FRAZIL_HEARTBEAT_SECONDS="60",
               FRAZIL_GRID_FILE_ROOTS=str(tmp_path / "out"))  # where the tasks' file:// outputs may go
    try:
        dataset_id = await d.submit(_config(tmp_path, 8.0, tmp_path / "out"), jobs=2)
        # --heartbeat 30: slower than the lease allows; the pilot heartbeats every second anyway
        d.pilot("p1", "--cpus", "2", "--memory", "1", "--disk", "5", "--idle-timeout", "20", "--heartbeat", "30")
        states: set[str] = set()

        async def done() -> bool:
            pilots = await with_store(d.db, lambda store: store.list_pilots())
            states.update(p.state for p in pilots)
            return await _all_complete(d, dataset_id, 2)
        await wait_for(done, 90, "both 8 s tasks to complete on the one pilot", lambda: d.log("p1")[-3000:])
        assert states == {"active"}, f"the live pilot was marked {states}"
        for row in await tasks_of(d.db, dataset_id):
            attempts = await attempts_of(d.db, row["task_id"])
            assert [a.status for a in attempts] == ["complete"], attempts  # never reaped, never retried
        assert "lease lost" not in d.log("p1")
    finally:
        d.stop_all()
