"""The admin dashboard's upkeep panels (issue 16): log retention counts."""
from __future__ import annotations

import asyncio
from html import unescape

from server.store import NewLog
from tests.web.conftest import WebServer, csrf_of, sign_in


async def test_dashboard_shows_log_retention(web_server: WebServer) -> None:
    for name in ("stdout", "stdout", "stdlog"):
        await web_server.store.add_log(NewLog(name, "x", dataset_id="d", task_id="t"))
    admin = await sign_in(web_server, "root", role="admin", groups=("admin",))
    async with admin:
        for _ in range(50):  # the loop's first round runs at start
            async with admin.get(f"{web_server.url}/admin") as reply:
                assert reply.status == 200
                page = unescape(await reply.text())
            if "last round not yet" not in page:
                break
            await asyncio.sleep(0.1)
    assert page.index('id="log-retention"') > page.index("<main>")  # in the page, not its <title>
    section = page[page.index('id="log-retention"'):]
    section = section[:section.index("</section>")]
    assert "kept 31.0 days, task stdout/stderr 365.0 days" in section
    assert "<td>stdout</td><td>task</td><td>2</td>" in section and "<td>stdlog</td><td>own</td><td>1</td>" in section
    assert "Removed since this server started: 0 of frazil's own logs, 0 task stdout/stderr logs" in section


async def test_dashboard_lists_quarantines_and_lifts_one(web_server: WebServer) -> None:
    store = web_server.store
    made, _ = await store.add_quarantine("host", "node-13", "host node-13 failed 9 different tasks",
                                         "9999-01-01T00:00:00.000000")
    admin = await sign_in(web_server, "root", role="admin", groups=("admin",))
    async with admin:
        async with admin.get(f"{web_server.url}/admin") as reply:
            page = unescape(await reply.text())
        assert page.index('id="quarantines"') > page.index("<main>")
        section = page[page.index('id="quarantines"'):]
        section = section[:section.index("</section>")]
        assert "<td>host</td><td>node-13</td><td>host node-13 failed 9 different tasks</td>" in section
        token = await csrf_of(admin, f"{web_server.url}/admin")
        async with admin.post(f"{web_server.url}/admin/quarantines/{made.quarantine_id}/lift",
                              data={"csrf_token": "forged"}) as reply:
            assert reply.status == 403  # no lift without the page's CSRF token
        async with admin.post(f"{web_server.url}/admin/quarantines/{made.quarantine_id}/lift",
                              data={"csrf_token": token}) as reply:
            assert reply.status == 200 and "quarantine of host node-13 lifted" in unescape(await reply.text())
        async with admin.post(f"{web_server.url}/admin/quarantines/nope/lift", data={"csrf_token": token}) as reply:
            assert reply.status == 404
    [lifted] = await store.list_quarantines()
    assert lifted.lifted and lifted.lifted_by == "root"
    assert await store.list_quarantines(active_at=lifted.created) == []
