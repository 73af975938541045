"""``frazil quarantine`` (issue 16 item 3) and ``frazil alerts`` (item 2) against a real server: list, add
by hand, lift; what a non-admin and bad input get."""
from __future__ import annotations

import asyncio

import pytest

from server.cli import main


@pytest.fixture
def frazil(server, monkeypatch, capsys):
    def run_as(username: str, role: str = "user"):
        async def run(*argv: str) -> tuple[int, str, str]:
            monkeypatch.setenv("FRAZIL_URL", server.url)
            monkeypatch.setenv("FRAZIL_TOKEN", server.token(username, role=role,
                                                            groups=["admin"] if role == "admin" else ["users"]))
            try:
                code = await asyncio.to_thread(main, list(argv))
            except SystemExit as exc:  # argparse refuses bad arguments before anything is sent
                code = int(exc.code or 0)
            out = capsys.readouterr()
            return code, out.out, out.err
        return run
    return run_as


async def test_quarantine_list_add_lift(server, frazil) -> None:
    admin, alice = frazil("root", "admin"), frazil("alice")
    code, out, _ = await admin("quarantine")
    assert code == 0 and "no host or site is quarantined" in out
    code, out, _ = await admin("quarantine", "add", "host", "node-7", "--reason", "CVMFS broken", "--hours", "2")
    assert code == 0 and "host  node-7" in out and "CVMFS broken (by root)" in out
    [made] = await server.store.list_quarantines()
    code, out, _ = await admin("quarantine", "list")
    assert code == 0 and made.quarantine_id in out and "node-7" in out
    code, _, err = await alice("quarantine", "list")
    assert code == 1 and "403" in err
    code, _, err = await admin("quarantine", "add", "planet", "x")
    assert code == 2 and "invalid choice" in err
    code, _, err = await admin("quarantine", "add", "host", "x", "--hours", "0")
    assert code == 2 and "hours must be above 0" in err
    code, out, _ = await admin("quarantine", "lift", made.quarantine_id)
    assert code == 0 and "lifted by root" in out
    code, out, _ = await admin("quarantine", "list", "--all")
    assert code == 0 and "lifted by root" in out
    code, _, err = await admin("quarantine", "lift", "nope")
    assert code == 1 and "404" in err and "no quarantine" in err


async def test_alerts_add_list_delete(server, frazil) -> None:
    alice = frazil("alice")
    code, out, _ = await alice("alerts")
    assert code == 0 and "no alert subscriptions" in out
    code, out, _ = await alice("alerts", "add", "--event", "complete", "--event", "stalled", "--email",
                               "alice@example.org", "--stalled-hours", "2")
    assert code == 0 and "complete, stalled" in out and "e-mail alice@example.org" in out
    [sub] = await server.store.list_alert_subscriptions("alice")
    assert sub.stalled_hours == 2.0
    code, out, _ = await alice("alerts", "list")
    assert code == 0 and sub.subscription_id in out and "no events yet" in out
    code, _, err = await alice("alerts", "add", "--event", "quarantine", "--email", "a@b.c")
    assert code == 1 and "only admins" in err
    code, _, err = await alice("alerts", "add", "--event", "complete")
    assert code == 1 and "webhook_url, an email, or both" in err
    code, _, err = await alice("alerts", "--user", "bob", "list")
    assert code == 1 and "403" in err
    code, out, _ = await alice("alerts", "delete", sub.subscription_id)
    assert code == 0 and await server.store.list_alert_subscriptions("alice") == []
