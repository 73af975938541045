"""Inputs that used to slip past validation: each gets a 4xx naming the problem, and headers are uniform."""
from __future__ import annotations

import aiohttp


async def test_lone_surrogate_in_a_body_is_a_400(server):
    token = server.token("pilot-1", role="pilot", groups=())
    body = '{"resources": {"cpu": 1, "gpu": 0, "memory": 1, "disk": 1, "time": 1}, "site": "\\ud800", "hostname": "h"}'
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.url}/pilots", data=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as response:
            assert response.status == 400
            assert "surrogate" in (await response.json())["error"]
    assert await server.store.list_pilots() == []


async def test_deeply_nested_body_is_a_400(server):
    token = server.token("admin", role="admin")
    body = "[" * 100_000 + "]" * 100_000
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{server.url}/users/x/priority", data=body,
                               headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 400


async def test_raised_errors_carry_the_security_headers(server):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/no/such/route") as response:
            assert response.status == 404
            assert (await response.json()) == {"code": 404, "error": "invalid api route"}
            assert response.headers["Cache-Control"].startswith("no-store")
        async with session.get(f"{server.url}/datasets") as response:
            assert response.status == 401
            assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_openapi_paths_have_no_regex(server):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/api/openapi.json") as response:
            document = await response.json()
    assert all(":" not in path for path in document["paths"])


def test_token_cache_honours_expiry():
    """Checked tokens are remembered, but never past their expiry (nor for long)."""
    import time as _time
    from server.auth import TokenAuthority, TokenError
    authority = TokenAuthority("k" * 64)
    expired = authority.create("alice", expiration=-300)  # beyond the library's 60 s clock-skew leeway
    for _ in range(2):
        try:
            authority.identify(expired)
        except TokenError:
            pass
        else:
            raise AssertionError("an expired token was accepted")
    token = authority.create("alice", expiration=5)
    assert authority.identify(token).username == "alice"
    until, identity, _issued, _token_id = authority._cache[token]
    assert identity.username == "alice" and until <= _time.time() + 5.01


async def test_error_replies_quote_only_a_short_prefix_of_the_value(server):
    """A 4 MB description (a schema's maxLength), a 1 MB task name inside a
    config, a long cursor: the 400 names the problem and quotes at most a short
    prefix of the value."""
    import json
    token = server.token("alice")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    long_config = json.dumps({"version": 3.2, "tasks": [{"name": "n" * 1_000_000, "trays": [{"modules": [
        {"src": 1}]}]}]})
    cases = [
        ("POST", "/datasets", json.dumps({"description": "x" * 4_000_000, "jobs_submitted": 1,
                                          "tasks_submitted": 1, "tasks_per_job": 1, "group": "users"})),
        ("POST", "/actions/submit", json.dumps({"config": long_config, "jobs_submitted": 1})),
        ("POST", "/actions/submit", json.dumps({"config": "{}", "jobs_submitted": "9" * 100_000})),
        ("GET", "/datasets?limit=1&after=" + "A" * 6000, None),
    ]
    async with aiohttp.ClientSession() as session:
        for method, path, body in cases:
            async with session.request(method, server.url + path, data=body, headers=headers) as response:
                text = await response.text()
                assert response.status == 400, (path, text[:300])
                assert len(text) < 1000, (path, len(text), text[:300])


async def test_over_long_integers_and_deep_configs_are_400s(server):
    import json
    token = server.token("alice")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    deep = json.dumps({"version": 3.2, "tasks": [{"name": "a", "trays": [{"modules": [
        {"src": "x.py", "parameters": {"p": json.loads("[" * 500 + "]" * 500)}}]}]}]})
    cases = {
        '{"description": ' + "1" * 5000 + "}": "too many digits",
        json.dumps({"config": '{"tasks": ' + "1" * 5000 + "}", "jobs_submitted": 1}): "too many digits",
        json.dumps({"config": "[" * 200_000 + "]" * 200_000, "jobs_submitted": 1}): "nested more than 64 levels",
        json.dumps({"config": deep, "jobs_submitted": 1}): "nested more than 64 levels",
    }
    async with aiohttp.ClientSession() as session:
        for body, expected in cases.items():
            path = "/datasets" if body.startswith('{"description"') else "/actions/submit"
            async with session.post(server.url + path, data=body, headers=headers) as response:
                reply = await response.json()
                assert response.status == 400 and expected in reply["error"], reply
