"""Acknowledged means durable (issue 11 item 10), shown from the system calls
of a real ``frazil server`` process: strace (Debian's) attaches to it while
a pilot completes a few tasks, and for each complete the trace must show
the server's reply leaving only after the SQLite writer thread wrote the
transaction's frames to the WAL and then fsync'ed that WAL.

The same run with ``durable_commits = false`` (SQLite ``synchronous=NORMAL``)
must NOT show it (for all replies but at most one: the writer still syncs
the WAL header when it restarts the log): the reply follows the WAL write
without an fsync of the writer's own (a checkpoint's fsync from another
thread does not count), so the check can fail and the default is what makes
it pass.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import pathlib
import re
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks.server_process import ServerProcess
from server.store import NewDataset, NewJob, NewTask, open_store

TASKS = 4
RESOURCES = {"cpu": 1, "gpu": 0, "memory": 4.0, "disk": 10.0, "time": 12.0}
CONFIG = {"version": 3.2, "tasks": [{"name": "t", "requirements": {"cpu": 1, "memory": 1.0},
                                     "trays": [{"modules": [{"src": "m.py"}]}]}]}
LINE = re.compile(r"^(?P<tid>\d+)\s+(?:<\.\.\. (?P<resumed>\w+) resumed>(?P<rest>.*)"
                  r"|(?P<call>\w+)\((?P<fd>\d+)?(?:<(?P<path>[^>]*)>)?(?P<args>.*))$")
SYNCS = {"fsync", "fdatasync"}
SENDS = {"sendto", "write", "writev", "sendmsg"}


@dataclass
class Call:
    """One system call: where its entry and its exit are in the trace."""

    tid: str
    name: str
    fd: str
    path: str
    args: str
    entry: int
    exit: int


def parse_trace(text: str) -> list[Call]:
    """strace -f -y output → calls; an ``<unfinished ...>`` call is completed
    by its ``<... name resumed>`` line of the same thread (its exit)."""
    calls: list[Call] = []
    open_calls: dict[tuple[str, str], Call] = {}
    for index, line in enumerate(text.splitlines()):
        match = LINE.match(line)
        if match is None:
            continue
        tid = match["tid"]
        if match["resumed"]:
            call = open_calls.pop((tid, match["resumed"]), None)
            if call is not None:
                call.exit = index
            continue
        call = Call(tid, match["call"], match["fd"] or "", match["path"] or "", match["args"], index, index)
        calls.append(call)
        if line.endswith("<unfinished ...>"):
            call.exit = -1
            open_calls[(tid, call.name)] = call
    return calls


def check_replies(calls: list[Call], task_ids: list[str]) -> list[str]:
    """For each complete: the reply's send is preceded by an fsync of the WAL,
    by the thread that last wrote to the WAL before the reply, finished after
    that write and before the send. Returns the problems (empty: all fine)."""
    problems: list[str] = []
    for task_id in task_ids:
        request = next((c for c in calls if c.name in ("recvfrom", "read")
                        and f"/tasks/{task_id}/task_actions/complete" in c.args), None)
        if request is None:
            problems.append(f"{task_id}: the request is not in the trace")
            continue
        reply = next((c for c in calls if c.name in SENDS and c.fd == request.fd and c.entry > request.entry
                      and "HTTP/1.1 200" in c.args), None)
        if reply is None:
            problems.append(f"{task_id}: no HTTP reply on fd {request.fd} in the trace")
            continue
        wal_writes = [c for c in calls if c.name.startswith("pwrite") and c.path.endswith("-wal")
                      and request.entry < c.entry < reply.entry]
        if not wal_writes:
            problems.append(f"{task_id}: no WAL write between the request and the reply")
            continue
        last = wal_writes[-1]
        synced = [c for c in calls if c.name in SYNCS and c.path.endswith("-wal") and c.tid == last.tid
                  and c.entry > last.exit and 0 <= c.exit < reply.entry]
        if not synced:
            problems.append(f"{task_id}: the reply (trace line {reply.entry + 1}) left without an fsync of the WAL "
                            f"after the writer's last WAL write (line {last.entry + 1})")
    return problems


async def _fill(db: str) -> None:
    store = await open_store(db)
    try:
        ds = await store.create_dataset(NewDataset(description="durable", jobs_submitted=TASKS, tasks_per_job=1,
                                                   group="users", username="u"))
        version = await store.add_config_version(ds.dataset_id, CONFIG, "u")
        await store.create_jobs(ds.dataset_id, [NewJob(job_index=i, tasks=[NewTask(
            name="t", task_index=0, requirements={"cpu": 1, "memory": 1.0}, priority=0.5)]) for i in range(TASKS)],
            version)
        await store.release_dependencies(limit=100)
        assert len(await store.queue_tasks(100)) == TASKS
    finally:
        await store.close()


def _trace_completes(tmp: pathlib.Path, durable: bool) -> tuple[list[Call], list[str], str]:
    db = f"sqlite:///{tmp}/frazil.db"
    asyncio.run(_fill(db))
    server = ServerProcess(db, tmp / "data", env={"FRAZIL_LOOPS": "false", "FRAZIL_LOG_LEVEL": "warning",
                                                  "FRAZIL_DURABLE_COMMITS": str(durable).lower()})
    server.start()
    trace = tmp / "strace.txt"
    tracer: subprocess.Popen[bytes] | None = None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        headers = {"Authorization": f"Bearer {server.token('pilot', role='system')}",
                   "Content-Type": "application/json"}

        def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
            conn.request("POST", path, json.dumps(body), headers)
            reply = conn.getresponse()
            return reply.status, json.loads(reply.read())

        status, registered = post("/pilots", {"resources": RESOURCES, "site": "t", "hostname": "h"})
        assert status == 201, registered
        pilot_id = registered["result"]
        claimed = []
        for _ in range(TASKS):
            status, task = post("/task_actions/process", {"pilot_id": pilot_id, "resources": RESOURCES})
            assert status == 200, task
            claimed.append(task)
        tracer = subprocess.Popen(["strace", "-f", "-y", "-s", "160", "-o", str(trace), "-p", str(server.pid),
                                   "-e", "trace=fsync,fdatasync,write,pwrite64,sendto,writev,sendmsg,recvfrom"],
                                  stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not (trace.exists() and trace.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)  # attached: the event loop's idle wake-ups are written
        time.sleep(0.5)  # every thread attached
        for task in claimed:
            status, reply = post(f"/tasks/{task['task_id']}/task_actions/complete",
                                 {"instance_id": task["instance_id"], "time_used": 1.0})
            assert (status, reply) == (200, {"status": "complete"})
        time.sleep(0.3)
    finally:
        if tracer is not None:
            tracer.terminate()
            _, err = tracer.communicate(timeout=30)
        server.stop()
    text = trace.read_text(errors="replace")
    assert "recvfrom" in text, f"strace saw nothing: {err.decode(errors='replace')[-2000:]}"
    return parse_trace(text), [t["task_id"] for t in claimed], text


@pytest.mark.slow
def test_each_complete_reply_follows_an_fsync_of_its_wal(tmp_path: pathlib.Path) -> None:
    calls, task_ids, text = _trace_completes(tmp_path, durable=True)
    problems = check_replies(calls, task_ids)
    assert not problems, "\n".join(problems) + "\n" + text[-4000:]


@pytest.mark.slow
def test_without_durable_commits_the_reply_does_not_wait_for_an_fsync(tmp_path: pathlib.Path) -> None:
    calls, task_ids, _ = _trace_completes(tmp_path, durable=False)
    problems = check_replies(calls, task_ids)
    # NORMAL never fsyncs at commit; SQLite still syncs the WAL header when it restarts the log,
    # which now and then lands right before a reply: most replies, not always all, show it
    assert len(problems) >= len(task_ids) - 1 and all("without an fsync" in p for p in problems), problems


def test_parse_trace_pairs_unfinished_calls_with_their_exit() -> None:
    calls = parse_trace("10 fdatasync(7</d/x.db-wal> <unfinished ...>\n"
                        "11 sendto(9<socket:[1]>, \"x\", 1, 0, NULL, 0) = 1\n"
                        "10 <... fdatasync resumed>) = 0\n")
    sync, send = calls
    assert (sync.name, sync.path, sync.entry, sync.exit) == ("fdatasync", "/d/x.db-wal", 0, 2)
    assert (send.name, send.fd, send.entry, send.exit) == ("sendto", "9", 1, 1)
