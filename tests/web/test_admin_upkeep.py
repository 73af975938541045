"""The admin dashboard's upkeep panels (issue 16): log retention counts."""
from __future__ import annotations

import asyncio
from html import unescape

from server.store import NewLog
from tests.web.conftest import WebServer, sign_in


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
    section = page[page.index('id="log-retention"'):]
    section = section[:section.index("</section>")]
    assert "kept 31.0 days, task stdout/stderr 365.0 days" in section
    assert "<td>stdout</td><td>task</td><td>2</td>" in section and "<td>stdlog</td><td>own</td><td>1</td>" in section
    assert "Removed since this server started: 0 of frazil's own logs, 0 task stdout/stderr logs" in section
