"""The task page says when a paced retry may be queued again (issue 12 item 4)."""
from __future__ import annotations

import asyncio

from common.resources import Resources
from server.store import AttemptResult, ClaimRequest, FailureClass, NewPilot, RetryPolicy
from tests.web.conftest import WebServer, make_dataset, sign_in


async def test_task_page_shows_not_before_of_a_paced_retry(web_server: WebServer) -> None:
    store = web_server.store
    dataset = await make_dataset(store, jobs=1, names=("generate",))
    pilot_id = await store.register_pilot(NewPilot(resources={"cpu": 1}))
    request = ClaimRequest(pilot_id=pilot_id, free=Resources(cpu=1, gpu=0, memory=4.0, disk=10.0, time=10.0),
                           lease_seconds=600)
    for _ in range(100):  # the server's loops release and queue the task
        claimed = await store.claim(request)
        if claimed is not None:
            break
        await asyncio.sleep(0.1)
    assert claimed is not None
    task_id = claimed.task.task_id
    url = f"{web_server.url}/dataset/{dataset.dataset_id}/task/{task_id}"
    client = await sign_in(web_server)
    async with client:
        async with client.get(url) as reply:
            assert 'id="retry-not-before"' not in await reply.text()
        await store.reset(task_id, claimed.instance_id, AttemptResult(failure_class=FailureClass.NONPHYSICS,
                                                                       kind="transfer"), RetryPolicy(retry_delay=600))
        async with client.get(url) as reply:
            page = await reply.text()
    assert 'id="retry-not-before"' in page and "not queued before" in page, page[:3000]
    assert "UTC (in 600 s)" in page or "UTC (in 599 s)" in page
