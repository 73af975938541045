"""Fuzzing the whole API from its OpenAPI declarations: no input may produce a 5xx.

Bodies come from each route's JSON schema (the declared keys with values of
the declared types, edge values included) and from arbitrary JSON; query strings are random
values for the declared parameters. The server runs in its own thread with
its own event loop so hypothesis can drive it with plain blocking calls.
"""
from __future__ import annotations

import asyncio
import json
import re
import threading

import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from server.api.routing import ANONYMOUS
from server.keys import ROUTE_SPECS, TOKENS
from server.settings import Settings
from server.store import NewDataset, NewJob, NewTask, open_store
from tests.server.conftest import free_port, start_server

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def shaped(schema: dict) -> st.SearchStrategy:
    """Values shaped like ``schema``: right keys and types, edge values, sometimes a wrong type."""
    if not isinstance(schema, dict):
        return JSON
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | JSON
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        props = schema.get("properties", {})
        required = {k: shaped(v) for k, v in props.items() if k in schema.get("required", [])}
        optional = {k: shaped(v) for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "array":
        return st.lists(shaped(schema.get("items", {})), max_size=4)
    if kind == "string":
        return st.text(max_size=40) | st.sampled_from(["", "x" * 5000, "../..", "<script>", "\u0000"])
    if kind == "integer":
        return st.integers(-2**70, 2**70) | st.sampled_from([0, -1, 2**63, -2**63 - 1])
    if kind == "number":
        return st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2**70, 2**70)
    if kind == "boolean":
        return st.booleans()
    return JSON


QUERY_VALUE = st.one_of(st.text(max_size=20), st.integers(-10**20, 10**20).map(str),
                        st.sampled_from(["", "|", "true", "x|y", "-1", "0", "1e400", "processing|bogus"]))


class ThreadedServer:
    def __init__(self, settings_: Settings):
        self.settings = settings_
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.store = await open_store(self.settings.db)
        dataset = await self.store.create_dataset(NewDataset(description="fuzz", jobs_submitted=2, tasks_submitted=2,
                                                             tasks_per_job=1, group="users", username="admin"))
        await self.store.add_config_version(dataset.dataset_id, {"version": 3.2, "tasks": [
            {"name": "a", "trays": [{"modules": [{"src": "x.py"}]}]}]}, "admin")
        await self.store.create_jobs(dataset.dataset_id, [NewJob(job_index=0, tasks=[NewTask(name="a", task_index=0)])])
        self.dataset_id = dataset.dataset_id
        self.runner, self.running = await start_server(self.settings, self.store)

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self) -> None:
        async def shutdown():
            await self.runner.cleanup()
            await self.store.close()
        self.call(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    server = ThreadedServer(Settings(db=f"sqlite:///{base}/f.db", data_dir=str(base / "data"), port=free_port(),
                                     provider="none", loops=False))
    server.thread.start()
    assert server.ready.wait(30)
    tokens = server.running.app[TOKENS]
    server.admin = tokens.create("admin", role="admin", groups=["admin"])
    server.pilot = tokens.create("pilot", role="pilot")
    server.specs = [s for s in server.running.app[ROUTE_SPECS] if s.tag != "web"]
    server.http = requests.Session()
    yield server
    server.http.close()
    server.stop()


def _url(server, path: str, fill: str) -> str:
    path = path.replace("{dataset_id}", server.dataset_id)
    return server.running.url + re.sub(r"{[^}]+}", fill, path)


@settings(max_examples=int(__import__("os").environ.get("FRAZIL_FUZZ_EXAMPLES", "400")), deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_input_makes_a_5xx(fuzz_server, data):
    spec = data.draw(st.sampled_from(fuzz_server.specs), label="route")
    fill = data.draw(st.sampled_from(["nonexistent", "0", "x" * 300, "%00", "1"]), label="path value")
    token = fuzz_server.pilot if spec.pilot and data.draw(st.booleans()) else fuzz_server.admin
    headers = {} if ANONYMOUS in spec.roles else {"Authorization": f"Bearer {token}"}
    params = {q.name: data.draw(QUERY_VALUE, label=q.name) for q in spec.query if data.draw(st.booleans())}
    kwargs = {}
    if spec.method in {"POST", "PUT", "PATCH"}:
        if spec.body is not None and data.draw(st.booleans(), label="schema-shaped body"):
            body = data.draw(shaped(spec.body), label="body")
        else:
            body = data.draw(JSON, label="body")
        # allow_nan: "NaN"/"Infinity" tokens are what a careless client sends
        kwargs["data"] = json.dumps(body, allow_nan=True)
        headers["Content-Type"] = "application/json"
    response = fuzz_server.http.request(spec.method, _url(fuzz_server, spec.path, fill), params=params,
                                        headers=headers, timeout=60, **kwargs)
    assert response.status_code < 500, (spec.method, spec.path, params, kwargs, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["Content-Type"].startswith("application/json")
        # IceProd's shape; "reason" (common.protocol.Reason) on the errors a pilot acts on
        assert {"code", "error"} <= set(response.json()) <= {"code", "error", "reason"} and response.json()["error"]


HOSTILE_BODIES = {
    "a 5000-digit integer": '{"a": ' + "7" * 5000 + "}",
    "a 4000-digit integer": '{"a": ' + "7" * 4000 + "}",
    "nesting past the recursion limit": "[" * 100_000 + "]" * 100_000,
    "nesting under the recursion limit": '{"a": ' + "[" * 900 + "]" * 900 + "}",
    "a config string with a 5000-digit integer": json.dumps({"config": '{"tasks": ' + "7" * 5000 + "}",
                                                            "jobs_submitted": 1, "dataset_id": "x"}),
    "a deeply nested config string": json.dumps({"config": '{"tasks": ' + "[" * 50_000 + "]" * 50_000 + "}",
                                                "jobs_submitted": 1, "dataset_id": "x"}),
    "a deep config object": json.dumps({"config": json.dumps({"version": 3.2, "tasks": [{"name": "a", "trays": [
        {"modules": [{"src": "x.py", "args": "", "parameters": {"p": json.loads("[" * 500 + "]" * 500)}}]}]}]}),
        "jobs_submitted": 1, "dataset_id": "x"}),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_BODIES))
def test_hostile_bodies_are_4xx_on_every_route(fuzz_server, kind):
    """Every route that takes a body, with bodies Python's json turns into
    exceptions (int digit limit, RecursionError) or that are deep enough to
    break whatever walks them next: a 4xx, never a 5xx."""
    body = HOSTILE_BODIES[kind]
    failures = []
    for spec in fuzz_server.specs:
        if spec.method not in {"POST", "PUT", "PATCH"}:
            continue
        token = fuzz_server.pilot if spec.pilot and "admin" not in spec.roles else fuzz_server.admin
        path = spec.path.replace("{action}", "submit")
        response = fuzz_server.http.request(spec.method, _url(fuzz_server, path, "nonexistent"), data=body,
                                            headers={"Authorization": f"Bearer {token}",
                                                     "Content-Type": "application/json"}, timeout=60)
        if response.status_code >= 500 or len(response.content) > 2000:
            failures.append(f"{spec.method} {path}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)
