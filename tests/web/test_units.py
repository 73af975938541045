"""Unit tests of the website's pure parts: sessions, CSRF, plots, diffs."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from server.auth import Identity, TokenAuthority
from server.web import csrf, plots
from server.web.config_pages import config_diff
from server.web.dataset_pages import task_types
from server.web.framework import safe_next
from server.web.plot_pages import bucket_series, epoch, progress_series
from server.web.sessions import SESSION_SECONDS, SessionCodec, derive_key, token_expiry
from server.web.snapshots import Snapshots

CODEC = SessionCodec(derive_key("x" * 64, "session"))
ALICE = Identity("alice", "user", frozenset({"users", "simprod"}))


def test_session_round_trip_and_tampering() -> None:
    session = CODEC.new_session(ALICE)
    cookie = CODEC.encode(session)
    assert CODEC.decode(cookie) == session
    assert session.identity == ALICE and not session.is_admin
    body, _, signature = cookie.partition(".")
    forged = CODEC.encode(CODEC.new_session(Identity("alice", "admin", frozenset()))).partition(".")[0]
    assert CODEC.decode(f"{forged}.{signature}") is None
    assert CODEC.decode(body) is None
    assert CODEC.decode("garbage") is None
    assert SessionCodec(derive_key("y" * 64, "session")).decode(cookie) is None


def test_session_expires_and_never_outlives_its_token() -> None:
    now = time.time()
    session = CODEC.new_session(ALICE, now=now)
    assert session.expires == now + SESSION_SECONDS
    assert CODEC.decode(CODEC.encode(session), now=now + SESSION_SECONDS + 1) is None
    token = TokenAuthority("k" * 64).create("alice", groups=["users"], expiration=60)
    expiry = token_expiry(token)
    assert expiry is not None and abs(expiry - (now + 60)) < 5
    assert CODEC.new_session(ALICE, token_expires=expiry, now=now).expires == expiry
    assert token_expiry("not.a-token") is None


def test_csrf_tokens_are_bound_to_the_session() -> None:
    key = derive_key("x" * 64, "csrf")
    one, two = CODEC.new_session(ALICE), CODEC.new_session(ALICE)
    assert csrf.check_session_token(key, one, csrf.session_token(key, one))
    assert not csrf.check_session_token(key, two, csrf.session_token(key, one))
    assert not csrf.check_session_token(key, one, None)
    assert csrf.check_login_token("abc", "abc") and not csrf.check_login_token("abc", "abd")
    assert not csrf.check_login_token(None, None)


def test_next_is_local_only() -> None:
    assert safe_next("/dataset/3?x=1") == "/dataset/3?x=1"
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example", None, ""):
        assert safe_next(hostile) == "/dataset"


def test_plots_escape_labels_and_handle_no_data() -> None:
    hostile = "<script>alert(1)</script>"
    svg = plots.histogram([0.5, 1.0, 1.5], title=hostile, x_label="GB", marker=2.0, marker_label=hostile)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and svg.count("<rect") == 3
    assert "no data yet" in plots.histogram([], title="t", x_label="x")
    line = plots.line_chart({hostile: [(1000.0, 1.0), (1060.0, 3.0)]}, title="p", y_label="n")
    assert "<polyline" in line and "<script>" not in line
    assert plots.bars({"cpu1": 3, hostile: 1}, title="q").count("<rect") == 2


def test_series_helpers() -> None:
    assert progress_series([30.0, 10.0, 20.0], 10) == {"complete tasks": [(10.0, 8.0), (20.0, 9.0), (30.0, 10.0)]}
    series = bucket_series([(0.0, "physics"), (100.0, "infra"), (99.0, "infra")], buckets=2)
    assert [v for _, v in series["infra"]] == [0.0, 2.0] and [v for _, v in series["physics"]] == [1.0, 0.0]
    assert epoch("2024-01-01T00:00:00.000000") == 1704067200.0 and epoch("junk") is None


def test_config_diff_and_task_types() -> None:
    diff = config_diff({"a": 1, "b": [1, 2]}, {"a": 2, "b": [1, 2]}, "v1", "v2")
    assert ("del", '-  "a": 1,') in diff and ("add", '+  "a": 2,') in diff and diff[0] == ("file", "--- v1")
    assert config_diff({"a": 1}, {"a": 1}, "v1", "v2") == []
    config = {"tasks": [{"name": "gen"}, {"name": "reco", "requirements": {"gpu": 1}},
                        {"requirements": {"gpu": "$(gpus)"}}, {"name": "zero", "requirements": {"gpu": 0}},
                        {"name": "ids", "requirements": {"gpu": ["0", "1"]}},
                        {"name": "text", "requirements": {"gpu": "0"}}]}
    assert task_types(config) == {"gen": "CPU", "reco": "GPU", "2": "GPU", "zero": "CPU", "ids": "GPU", "text": "CPU"}


async def test_snapshots_share_one_computation_and_refresh_in_the_background() -> None:
    calls: list[int] = []
    gate = asyncio.Event()

    async def compute() -> int:
        calls.append(1)
        await gate.wait()
        return len(calls)
    shots = Snapshots(min_age=0.05, factor=0)
    first = [asyncio.ensure_future(shots.get("d", compute)) for _ in range(5)]
    await asyncio.sleep(0.01)
    gate.set()
    assert [(await f)[0] for f in first] == [1] * 5 and len(calls) == 1  # one scan for five viewers
    value, age = await shots.get("d", compute)
    assert value == 1 and age < 0.05 and len(calls) == 1
    await asyncio.sleep(0.06)
    value, _ = await shots.get("d", compute)  # stale: answered at once, refreshed behind
    assert value == 1
    await asyncio.sleep(0.01)
    assert (await shots.get("d", compute))[0] == 2
    shots.mark_stale("d")
    assert (await shots.get("d", compute))[0] == 2
    await asyncio.sleep(0.01)
    assert (await shots.get("d", compute))[0] == 3
    await shots.close()


async def test_snapshot_errors_reach_the_first_caller_only() -> None:
    async def broken() -> int:
        raise RuntimeError("store down")
    shots = Snapshots()
    with pytest.raises(RuntimeError):
        await shots.get("d", broken)
    assert shots.pending == {} and shots.entries == {}


def test_number_filter_matches_the_live_script() -> None:
    from server.web.framework import number
    assert [number(v, d) for v, d in ((3.0, 0), (100.0, 1), (0.02500001, 3), (2.0 / 3, 2), (0, 3))] == \
        ["3", "100", "0.025", "0.67", "0"]


def test_problem_paths_point_at_their_line() -> None:
    from common.config.errors import format_path
    from server.web.json_lines import line_of, parse_path, pretty_with_lines
    config = {"version": 3.2, "tasks": [{"name": "it's", "requirements": {"memory": "lots"}, "trays": []}]}
    text, where = pretty_with_lines(config)
    assert text == json.dumps(config, indent=2)
    lines = text.splitlines()
    assert lines[line_of("config['tasks'][0]['requirements']['memory']", where) - 1].strip() == '"memory": "lots"'
    assert parse_path("config['tasks'][0]['name']") == ("tasks", 0, "name")
    assert parse_path(format_path(["a'b", 3, 'x"y'])) == ("a'b", 3, 'x"y') and parse_path("jobs") is None
    assert parse_path("config['tasks']x") is None
    missing = line_of("config['tasks'][0]['trays'][0]['modules']", where)  # reported at the nearest parent
    assert lines[missing - 1].strip() == '"trays": []'


@pytest.mark.parametrize("span", [0.4, 2, 3, 8, 59, 61, 700, 5000, 90_000, 400_000, 3_000_000])
def test_time_axis_labels_are_distinct_whole_clock_values(span: float) -> None:
    import re
    from server.web.plots import line_chart
    start = 1_764_872_461.3  # not on a whole second
    svg = str(line_chart({"complete": [(start, 0), (start + span / 2, 5), (start + span, 9)]},
                         title="progress", y_label="tasks"))
    labels = re.findall(r'text-anchor="middle" fill="#444">([^<]+)</text>', svg)
    times = [label for label in labels if label[:2].isdigit()]
    assert times and len(times) == len(set(times)), times
