"""``frazil reset``, ``frazil status DATASET`` (forecast, sizing) and
``frazil accounting`` against a real server."""
from __future__ import annotations

import asyncio
import datetime

import pytest

from server.cli import main
from tests.server.production_data import production_history


@pytest.fixture
def frazil(server, monkeypatch, capsys):
    monkeypatch.setenv("FRAZIL_URL", server.url)
    monkeypatch.setenv("FRAZIL_TOKEN", server.token("alice"))

    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


async def test_reset_dry_run_then_reset(server, frazil):
    h = await production_history(server.store)
    code, out, _ = await frazil("reset", str(h.number), "--kind", "memory", "--site", "SiteA", "--dry-run")
    assert code == 0 and f"dry run: 4 task(s) of dataset {h.number} match" in out and "bad1" in out
    assert (await server.store.get_task(h.task_ids[0])).status == "failed"
    code, out, _ = await frazil("reset", h.dataset_id, "--jobs", "0-1", "--class", "physics")
    assert code == 0 and "reset: 2 of 2 matching task(s)" in out
    assert [(await server.store.get_task(i)).status for i in h.task_ids[:3]] == ["idle", "idle", "failed"]
    code, out, _ = await frazil("reset", h.dataset_id, "--host", "n2", "--suspend")
    assert code == 0 and "suspend: 0 of 2" in out  # failed tasks cannot be suspended by the state machine
    code, out, _ = await frazil("reset", h.dataset_id, "--host", "n2", "--hard")
    assert code == 0 and "hard_reset: 2 of 2" in out
    code, _, err = await frazil("reset", h.dataset_id, "--jobs", "9-2")
    assert code == 2 and "--jobs: 9 is above 2" in err
    code, _, err = await frazil("reset", h.dataset_id, "--since", "last tuesday")
    assert code == 1 and "since" in err and "HTTP 400" in err


async def test_status_shows_forecast_and_sizing(server, frazil):
    h = await production_history(server.store)
    await frazil("reset", h.dataset_id)  # the six failed tasks run again
    code, out, _ = await frazil("status", str(h.number))
    assert code == 0
    assert "forecast: 6 tasks left, 0.67 tasks/h over the last 6 h, ETA 9.0 h" in out
    assert "remaining: 12.0 CPU-hours, 0.0 GPU-hours" in out
    assert "sizing: t0 tasks use 1.3 GB memory at p95 of the 4 GB they ask; suggested request 1.6 GB" in out


async def test_accounting_table_and_csv(server, frazil):
    await production_history(server.store)
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    code, out, _ = await frazil("accounting", "--by", "site", "--since", today)
    assert code == 0 and "hours by site" in out and "SiteA" in out and "SiteB" in out
    code, out, _ = await frazil("accounting", "--by", "user", "--since", today, "--csv")
    assert code == 0 and out.splitlines() == ["day,user,wall_hours,core_hours,gpu_hours,attempts",
                                              f"{today},alice,7.0,14.0,0.0,10"]
    code, _, err = await frazil("accounting", "--since", "2030-01-01", "--until", "2020-01-01")
    assert code == 1 and "since must be before until" in err
