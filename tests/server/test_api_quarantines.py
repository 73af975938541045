"""Issue 16 item 3 over real HTTP: admins list, add and lift quarantines; a
pilot on a quarantined host or site is refused (403, reason ``quarantined``)
and set to drain; and the judge's rule on real attempt records."""
from __future__ import annotations

import pytest
import requests

from server.scheduling.quarantine import judge
from server.store import Attempt
from tests.server.test_api_pilot_support import claim, register


def _status(err: pytest.ExceptionInfo[requests.HTTPError]) -> tuple[int, str]:
    return err.value.response.status_code, err.value.response.json().get("reason", "")


async def test_admins_quarantine_list_and_lift(server) -> None:
    admin = server.rest(server.token("root", role="admin", groups=["admin"]))
    made = await admin.request("POST", "/quarantines", {"kind": "host", "name": "node1", "reason": "bad disk",
                                                        "hours": 2})
    assert made["kind"] == "host" and made["name"] == "node1" and made["reason"] == "bad disk (by root)"
    again = await admin.request("POST", "/quarantines", {"kind": "host", "name": "node1"})
    assert again["quarantine_id"] == made["quarantine_id"]  # one active quarantine per host
    listed = (await admin.request("GET", "/quarantines"))["quarantines"]
    assert [q["quarantine_id"] for q in listed] == [made["quarantine_id"]]
    for bad in ({"kind": "planet", "name": "x"}, {"kind": "host"}, {"kind": "host", "name": ""},
                {"kind": "host", "name": "x", "hours": 0}, {"kind": "host", "name": "x", "extra": 1}):
        with pytest.raises(requests.HTTPError) as err:
            await admin.request("POST", "/quarantines", bad)
        assert err.value.response.status_code == 400
    with pytest.raises(requests.HTTPError) as err:
        await admin.request("GET", "/quarantines", {"all": "maybe"})
    assert err.value.response.status_code == 400
    user = server.rest(server.token("alice"))
    for method, path in (("GET", "/quarantines"), ("DELETE", f"/quarantines/{made['quarantine_id']}")):
        with pytest.raises(requests.HTTPError) as err:
            await user.request(method, path)
        assert err.value.response.status_code == 403
    lifted = await admin.request("DELETE", f"/quarantines/{made['quarantine_id']}")
    assert lifted["lifted"] and lifted["lifted_by"] == "root"
    assert (await admin.request("GET", "/quarantines"))["quarantines"] == []
    assert [q["name"] for q in (await admin.request("GET", "/quarantines", {"all": "true"}))["quarantines"]] == [
        "node1"]
    with pytest.raises(requests.HTTPError) as err:
        await admin.request("DELETE", "/quarantines/nope")
    assert err.value.response.status_code == 404


async def test_pilots_of_a_quarantined_host_or_site_get_no_claims_and_drain(server) -> None:
    admin = server.rest(server.token("root", role="admin", groups=["admin"]))
    rc = server.rest(server.token("pilot-1", role="pilot"))
    on_bad_host = await register(rc, hostname="node-bad", site="site-a")
    on_bad_site = await register(rc, hostname="node-ok", site="site-b")
    elsewhere = await register(rc, hostname="node-ok", site="site-a")
    host = await admin.request("POST", "/quarantines", {"kind": "host", "name": "node-bad"})
    await admin.request("POST", "/quarantines", {"kind": "site", "name": "site-b"})
    for pilot_id, site in ((on_bad_host, "site-a"), (on_bad_site, "site-b")):
        with pytest.raises(requests.HTTPError) as err:
            await claim(rc, pilot_id, site=site)
        assert _status(err) == (403, "quarantined")
        assert (await server.store.get_pilot(pilot_id)).drain  # type: ignore[union-attr]
    with pytest.raises(requests.HTTPError) as err:
        await claim(rc, elsewhere, site="site-a")
    assert _status(err) == (404, "nothing_fits")  # not quarantined: just an empty queue
    await admin.request("DELETE", f"/quarantines/{host['quarantine_id']}")
    fresh = await register(rc, hostname="node-bad", site="site-a")
    with pytest.raises(requests.HTTPError) as err:
        await claim(rc, fresh, site="site-a")
    assert _status(err) == (404, "nothing_fits")  # lifted: the host may claim again


def _attempt(n: int, host: str, site: str, status: str, failure_class: str = "", dataset: str = "d1") -> Attempt:
    return Attempt(task_id=f"t{n}", attempt=1, instance_id=f"i{n}", dataset_id=dataset, job_id=f"j{n}",
                   pilot_id="p", host=host, site=site, start="2026-01-01T00:00:00.000000",
                   end=f"2026-01-01T00:00:{n:02d}.000000", status=status, failure_class=failure_class,
                   kind="cvmfs" if failure_class else "")


def test_judge_needs_many_tasks_more_failures_than_successes_and_others_succeeding() -> None:
    bad = [_attempt(n, "bad", "S1", "reset", "nonphysics") for n in range(4)]
    good = [_attempt(10 + n, "good", "S2", "complete") for n in range(3)]
    [verdict] = judge(bad + good, "host", 3, 60)
    assert (verdict.kind, verdict.name) == ("host", "bad")
    assert "failed 4 different tasks" in verdict.reason and "other hosts completed 3 tasks" in verdict.reason
    assert judge(bad + good, "host", 5, 60) == []  # below the threshold
    assert judge(bad + good, "host", 0, 60) == []  # 0: off
    assert judge(bad, "host", 3, 60) == []  # nobody else succeeds: the tasks are broken, not the host
    physics = [_attempt(n, "bad", "S1", "failed", "physics") for n in range(4)]
    assert judge(physics + good, "host", 3, 60) == []  # physics failures are the task's own
    mostly_fine = bad + [_attempt(20 + n, "bad", "S1", "complete") for n in range(5)]
    assert judge(mostly_fine + good, "host", 3, 60) == []  # completes more than it fails
    other_dataset = [_attempt(10 + n, "good", "S2", "complete", dataset="d2") for n in range(3)]
    assert judge(bad + other_dataset, "host", 3, 60) == []  # others succeed only at other datasets' tasks
    assert judge(bad + good, "host", 3, 60, forgiven={"bad": "2026-01-01T00:00:59.000000"}) == []  # lifted since
    [site] = judge(bad + good, "site", 3, 60)
    assert (site.kind, site.name) == ("site", "S1")
