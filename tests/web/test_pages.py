"""Fast tests of the website over real HTTP (no browser): sessions, CSRF,
authorization, escaping and the forms' server side."""
from __future__ import annotations

import asyncio
import warnings
import json
import re
from html import unescape
from urllib.parse import unquote

import aiohttp

from common.resources import Resources
from server.keys import PROVIDER
from server.provisioning.local import LocalProvider
from server.store import JobFilter, NewLog, TaskFilter
from server.web.framework import PAGE_CSP
from tests.web.conftest import CONFIG, WebServer, csrf_of, hidden, make_dataset, sign_in

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


async def test_anonymous_visitors_are_sent_to_login(web_server: WebServer) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{web_server.url}/dataset?status=complete", allow_redirects=False) as reply:
            assert reply.status == 303
            assert unquote(reply.headers["Location"]) == "/login?next=/dataset?status=complete"
        async with client.get(f"{web_server.url}/login") as reply:
            page = await reply.text()
            assert 'name="token"' in page
            assert reply.headers["Content-Security-Policy"] == PAGE_CSP


async def test_login_refuses_bad_tokens_and_forged_forms(web_server: WebServer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        token = await csrf_of(client, f"{web_server.url}/login")
        async with client.post(f"{web_server.url}/login", data={"csrf_token": token, "token": "not-a-jwt"}) as reply:
            assert reply.status == 401
            assert "this token cannot sign in" in await reply.text()
        async with client.post(f"{web_server.url}/login", data={"csrf_token": "forged",
                                                                "token": web_server.token()}) as reply:
            assert reply.status == 403
        for role in ("pilot", "system"):  # programs' tokens
            service = web_server.token(role, role=role)
            async with client.post(f"{web_server.url}/login", data={"csrf_token": token, "token": service}) as reply:
                assert reply.status == 401 and f"{role} tokens cannot sign in" in await reply.text()


async def test_session_cookie_is_signed_httponly_and_holds_no_token(web_server: WebServer) -> None:
    client = await sign_in(web_server)
    async with client:
        cookie = next(c for c in client.cookie_jar if c.key == "frazil_session")
        assert cookie["httponly"] and cookie["samesite"] == "Lax"
        assert "eyJ" not in cookie.value.split(".")[0][:3] or len(cookie.value) < 400
        async with client.get(f"{web_server.url}/dataset") as reply:
            page = await reply.text()
            assert reply.status == 200 and "alice" in page
            assert web_server.token() not in page
        tampered = cookie.value[:-2] + ("AA" if not cookie.value.endswith("AA") else "BB")
        async with aiohttp.ClientSession(cookies={"frazil_session": tampered}) as other:
            async with other.get(f"{web_server.url}/dataset", allow_redirects=False) as reply:
                assert reply.status == 303


async def test_dataset_list_filters_and_escapes(web_server: WebServer) -> None:
    await make_dataset(web_server.store, description="first one")
    second = await make_dataset(web_server.store, description=XSS, username="bob", group="simprod")
    await web_server.store.set_dataset_status(second.dataset_id, "suspended")
    client = await sign_in(web_server, groups=("users", "simprod"))
    async with client:
        async with client.get(f"{web_server.url}/dataset") as reply:
            page = await reply.text()
        assert page.index(f'>{second.dataset}</a>') < page.index('>1</a>')  # newest first
        assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        async with client.get(f"{web_server.url}/dataset?status=suspended&user=bob") as reply:
            page = await reply.text()
        assert "first one" not in page and "bob (simprod)" in page
        async with client.get(f"{web_server.url}/dataset?status=truncated") as reply:
            assert reply.status == 200 and "No dataset matches" in await reply.text()
        async with client.get(f"{web_server.url}/dataset?status=bogus") as reply:
            assert reply.status == 400 and "unknown dataset status 'bogus'" in unescape(await reply.text())


async def test_dataset_page_counts_and_live_json(web_server: WebServer) -> None:
    dataset = await make_dataset(web_server.store, jobs=3)
    client = await sign_in(web_server)
    async with client:
        for key in (str(dataset.dataset), dataset.dataset_id):
            async with client.get(f"{web_server.url}/dataset/{key}") as reply:
                page = await reply.text()
                assert reply.status == 200 and "Task status by task name" in page
        async with client.get(f"{web_server.url}/dataset/{dataset.dataset}/status.json") as reply:
            data = await reply.json()
        assert sum(data["tasks"].values()) == 6
        assert set(data["by_name"]) == {"generate", "filter"}
        async with client.get(f"{web_server.url}/dataset/999") as reply:
            assert reply.status == 404


async def test_writes_need_csrf_and_write_rights(web_server: WebServer) -> None:
    mine = await make_dataset(web_server.store)
    theirs = await make_dataset(web_server.store, username="bob", group="simprod")
    client = await sign_in(web_server)
    async with client:
        url = f"{web_server.url}/dataset/{mine.dataset_id}/priority"
        async with client.post(url, data={"priority": "0.9"}) as reply:
            assert reply.status == 403
        token = await csrf_of(client, f"{web_server.url}/dataset/{mine.dataset_id}")
        async with client.post(url, data={"priority": "0.9", "csrf_token": token}) as reply:
            assert reply.status == 200
        assert (await web_server.store.get_dataset(mine.dataset_id)).priority == 0.9
        async with client.post(url, data={"priority": "nan", "csrf_token": token}) as reply:
            assert reply.status == 400
        async with client.get(f"{web_server.url}/dataset/{theirs.dataset_id}") as reply:
            page = await reply.text()
            assert reply.status == 200 and 'action="/dataset/' + theirs.dataset_id + '/action"' not in page
        for path, data in ((f"/dataset/{theirs.dataset_id}/action", {"action": "suspend"}),
                           (f"/dataset/{theirs.dataset_id}/priority", {"priority": "1"})):
            async with client.post(web_server.url + path, data={**data, "csrf_token": token}) as reply:
                assert reply.status == 403
        assert (await web_server.store.get_dataset(theirs.dataset_id)).status == "processing"
        async with client.get(f"{web_server.url}/admin") as reply:
            assert reply.status == 403


async def test_submit_shows_problems_at_their_path_then_runs(web_server: WebServer) -> None:
    client = await sign_in(web_server)
    async with client:
        token = await csrf_of(client, f"{web_server.url}/submit")
        bad = {**CONFIG, "tasks": [{**CONFIG["tasks"][0], "requirements": {"memory": "lots"}}]}
        form = {"csrf_token": token, "config": json.dumps(bad), "description": "d", "jobs_submitted": "2",
                "group": "users"}
        async with client.post(f"{web_server.url}/submit", data=form) as reply:
            page = await reply.text()
        assert reply.status == 400
        assert "<code class=\"problem-path\">config['tasks'][0]['requirements']['memory']</code>" in unescape(page)
        async with client.post(f"{web_server.url}/submit", data={**form, "config": "{oops"}) as reply:
            assert reply.status == 400 and "not valid JSON" in await reply.text()
        async with client.post(f"{web_server.url}/submit", data={**form, "group": "simprod"}) as reply:
            assert reply.status == 400 and "is not one of your groups" in await reply.text()
        async with client.post(f"{web_server.url}/submit", data={**form, "config": json.dumps(CONFIG)},
                               allow_redirects=False) as reply:
            assert reply.status == 303
            status_url = web_server.url + reply.headers["Location"]
        for _ in range(100):
            async with client.get(status_url, allow_redirects=False) as reply:
                if reply.status == 303:
                    assert reply.headers["Location"].startswith("/dataset/")
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the submission never completed")


async def test_config_diff_and_log_tail(web_server: WebServer) -> None:
    dataset = await make_dataset(web_server.store)
    changed = {**CONFIG, "description": XSS}
    await web_server.store.add_config_version(dataset.dataset_id, changed, "alice", "edited")
    page_ = await web_server.store.list_tasks(TaskFilter(dataset_id=dataset.dataset_id))
    task_id = page_.rows[0]["task_id"]
    log_id = await web_server.store.add_log(NewLog(name="stdout", data="line 1\n", dataset_id=dataset.dataset_id,
                                                   task_id=task_id))
    client = await sign_in(web_server)
    async with client:
        async with client.get(f"{web_server.url}/config?dataset_id={dataset.dataset}&a=1&b=2") as reply:
            page = await reply.text()
        assert 'class="diff-add"' in page and "&lt;script&gt;" in page and "<script>alert" not in page
        await web_server.store.append_log(log_id, XSS)
        async with client.get(f"{web_server.url}/dataset/{dataset.dataset_id}/log/{log_id}.json?offset=7") as reply:
            data = await reply.json()
        assert data["data"] == XSS and data["offset"] == 7 + len(XSS)
        async with client.get(f"{web_server.url}/dataset/{dataset.dataset_id}/log/{log_id}") as reply:
            page = await reply.text()
        assert "&lt;img src=x onerror=alert(2)&gt;" in page and "<img src=x" not in page
        async with client.get(f"{web_server.url}/dataset/{dataset.dataset_id}/log/{log_id}.json?offset=x") as reply:
            assert reply.status == 400
        # The task page says how to run this very task locally (docs/cli.md).
        async with client.get(f"{web_server.url}/dataset/{dataset.dataset_id}/task/{task_id}") as reply:
            page = await reply.text()
        assert f"frazil run --task {task_id} --dataset {dataset.dataset}</code>" in page


async def test_config_edit_makes_a_new_version(web_server: WebServer) -> None:
    dataset = await make_dataset(web_server.store)
    client = await sign_in(web_server)
    async with client:
        token = await csrf_of(client, f"{web_server.url}/config?dataset_id={dataset.dataset_id}&edit=1")
        edited = json.loads(json.dumps(CONFIG))
        edited["tasks"][0]["requirements"]["memory"] = 2.5
        form = {"csrf_token": token, "dataset_id": dataset.dataset_id, "config": json.dumps(edited),
                "description": "more memory", "comment": "gen needs 2.5 GB"}
        renamed = json.loads(json.dumps(edited))
        renamed["tasks"][0]["name"] = "other"
        async with client.post(f"{web_server.url}/config", data={**form, "config": json.dumps(renamed)}) as reply:
            assert reply.status == 400 and "must keep its name" in unescape(await reply.text())
        async with client.post(f"{web_server.url}/config", data=form, allow_redirects=False) as reply:
            assert reply.status == 303 and reply.headers["Location"].startswith("/config/status/")
            status_url = web_server.url + reply.headers["Location"]
        for _ in range(100):
            async with client.get(status_url, allow_redirects=False) as reply:
                if reply.status == 303:
                    break
            await asyncio.sleep(0.1)
        versions = await web_server.store.list_config_versions(dataset.dataset_id)
        assert [v.version for v in versions] == [1, 2] and versions[1].comment == "gen needs 2.5 GB"
        assert versions[0].config["tasks"][0]["requirements"]["memory"] == 1.0  # the old one is kept
        assert (await web_server.store.get_dataset(dataset.dataset_id)).description == "more memory"
        other = await sign_in(web_server, "mallory", groups=("users",))
        async with other:
            async with other.get(f"{web_server.url}/config?dataset_id={dataset.dataset_id}&edit=1") as reply:
                assert reply.status == 403
            async with other.get(status_url) as reply:
                assert reply.status == 404  # someone else's request is not shown


async def test_admin_pages_job_page_schemas_and_oidc_off(web_server: WebServer, tmp_path) -> None:
    dataset = await make_dataset(web_server.store)
    await web_server.store.create_group("simprod", 0.5)
    with warnings.catch_warnings():  # the provisioning service sets it at startup; a running app warns
        warnings.simplefilter("ignore", DeprecationWarning)
        web_server.app[PROVIDER] = LocalProvider(
            server_url=web_server.url, slots=Resources(cpu=2), directory=tmp_path / "pilots", mint_token=lambda: "")
    from server.store import NewPilot
    await web_server.store.register_pilot(NewPilot(resources={"cpu": 4, "gpu": 0, "memory": 8.0, "disk": 20.5,
                                                               "time": 12}, site="WIPAC", hostname="node-7"))
    admin = await sign_in(web_server, "root", role="admin", groups=("admin",))
    async with admin:
        async with admin.get(f"{web_server.url}/admin") as reply:
            page = await reply.text()
        assert '<strong id="provider-name">local</strong>' in page and 'id="provider-counts"' in page
        # The pilot table reads as text, not JSON.
        assert "4 CPU · 8 GB memory · 20.5 GB disk · 12 h" in page and '{"cpu"' not in page
        token = await csrf_of(admin, f"{web_server.url}/admin")
        async with admin.post(f"{web_server.url}/admin/groups/simprod/priority",
                              data={"csrf_token": token, "priority": "0.75"}) as reply:
            assert reply.status == 200 and "priority of group simprod set" in await reply.text()
        assert {g.name: g.priority for g in await web_server.store.list_groups()}["simprod"] == 0.75
        for bad in ("1.5", "x", "-1"):
            async with admin.post(f"{web_server.url}/admin/users/alice/priority",
                                  data={"csrf_token": token, "priority": bad}) as reply:
                assert reply.status == 400
        async with admin.post(f"{web_server.url}/admin/users/nobody/priority",
                              data={"csrf_token": token, "priority": "0.1"}) as reply:
            assert reply.status == 404
        jobs = (await web_server.store.list_jobs(JobFilter(dataset_id=dataset.dataset_id))).rows
        async with admin.get(f"{web_server.url}/dataset/{dataset.dataset_id}/job") as reply:
            assert reply.status == 200 and jobs[0]["job_id"] in await reply.text()
        async with admin.get(f"{web_server.url}/dataset/{dataset.dataset_id}/job/{jobs[0]['job_id']}") as reply:
            page = await reply.text()
            assert reply.status == 200 and "generate" in page and "filter" in page
        async with admin.post(f"{web_server.url}/dataset/{dataset.dataset_id}/job/{jobs[0]['job_id']}/action",
                              data={"csrf_token": token, "action": "suspend"}) as reply:
            assert reply.status == 200 and "suspend requested" in await reply.text()
        async with admin.get(f"{web_server.url}/dataset/{dataset.dataset_id}/job/not-a-job") as reply:
            assert reply.status == 404
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{web_server.url}/schemas/v3/dataset.schema.json") as reply:
            assert reply.status == 200 and "properties" in await reply.json()
        async with anonymous.get(f"{web_server.url}/schemas/v3/nope.json") as reply:
            assert reply.status == 404
        async with anonymous.get(f"{web_server.url}/login/oidc") as reply:
            assert reply.status == 404 and "not configured" in await reply.text()


async def test_bad_input_is_a_4xx_page_never_a_500(web_server: WebServer) -> None:
    dataset = await make_dataset(web_server.store)
    did = dataset.dataset_id
    client = await sign_in(web_server)
    cases = {
        "/dataset?before=abc": 400, "/dataset?status=bogus|complete": 400, "/dataset/abc": 404,
        f"/dataset/{did}/task?status=nope": 400, f"/dataset/{did}/task?status=idle&after=garbage": 400,
        f"/dataset/{did}/job?status=idle": 400, f"/dataset/{did}/job?after=%ff%00": 400,
        f"/dataset/{did}/task/{'0' * 32}": 404, f"/dataset/{did}/log/{'0' * 32}": 404,
        f"/dataset/{did}/log/{'0' * 32}.json?offset=-1": 400, "/config": 400,
        f"/config?dataset_id={did}&version=abc": 400, f"/config?dataset_id={did}&version=9": 404,
        f"/config?dataset_id={did}&a=1&b=7": 404, "/submit/status/nothing": 404, "/config/status/nothing": 404,
    }
    async with client:
        for path, status in cases.items():
            async with client.get(web_server.url + path) as reply:
                assert reply.status == status, (path, reply.status, await reply.text())
        token = await csrf_of(client, f"{web_server.url}/dataset/{did}")
        posts = {f"/dataset/{did}/action": {"action": "explode"}, f"/dataset/{did}/priority": {"priority": "inf"},
                 f"/dataset/{did}/task/{'0' * 32}/action": {"action": "reset"},
                 f"/dataset/{did}/job/{'0' * 32}/action": {"action": "nope"},
                 "/submit": {"jobs_submitted": "-3", "config": "[]"},
                 "/config": {"dataset_id": did, "config": "{}"}}
        for path, form in posts.items():
            async with client.post(web_server.url + path, data={**form, "csrf_token": token}) as reply:
                assert 400 <= reply.status < 500, (path, reply.status, await reply.text())


async def test_actions_on_every_job_or_task_of_a_page(web_server: WebServer) -> None:
    dataset = await make_dataset(web_server.store, jobs=3)
    other = await make_dataset(web_server.store, jobs=1)
    foreign = (await web_server.store.list_tasks(TaskFilter(dataset_id=other.dataset_id))).rows[0]["task_id"]
    client = await sign_in(web_server)
    async with client:
        async with client.get(f"{web_server.url}/dataset/{dataset.dataset_id}/task?name=filter") as reply:
            page = await reply.text()
        token = hidden(page)
        ids = re.findall(r'name="id" value="([0-9a-f]+)"', page)
        assert len(ids) == 3
        form = aiohttp.FormData([("csrf_token", token), ("action", "suspend"), ("back", "https://evil.example/"),
                                 *[("id", i) for i in [*ids, foreign]]])
        async with client.post(f"{web_server.url}/dataset/{dataset.dataset_id}/task/action", data=form,
                               allow_redirects=False) as reply:
            assert reply.status == 303 and reply.headers["Location"] == f"/dataset/{dataset.dataset_id}"

        async def suspended() -> int:
            counts = await web_server.store.task_counts_by_name_status(dataset.dataset_id)
            return counts["filter"].get("suspended", 0)
        for _ in range(100):
            if await suspended() == 3:
                break
            await asyncio.sleep(0.05)
        assert await suspended() == 3
        assert (await web_server.store.get_task(foreign)).status != "suspended"  # not this dataset's
        async with client.post(f"{web_server.url}/dataset/{dataset.dataset_id}/job/action",
                               data={"csrf_token": token, "action": "suspend"}) as reply:
            assert reply.status == 400 and "select between 1 and 100 jobs" in await reply.text()
        async with client.get(f"{web_server.url}/dataset/{dataset.dataset_id}/job") as reply:
            assert 'id="job-page-actions"' in await reply.text()
