"""The pilot↔server protocol: one declaration per field gives the check, the
JSON Schema and the documentation, and they agree."""
from __future__ import annotations

import math
import pathlib
from typing import Any

import jsonschema
import pytest

from common.protocol import (
    MESSAGES, AttemptReport, ClaimReply, ClaimRequest, ErrorReply, Heartbeat, ProtocolError, Reason, Registration,
    ResourceSet, TaskStats, render_blocks,
)
from common.wire import json_schema

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "pilot-api.md"
SLOT = {"cpu": 2, "gpu": 0, "memory": 4.0, "disk": 10.0, "time": 12.0}


def test_docs_pilot_api_tables_are_the_declarations() -> None:
    """docs/pilot-api.md embeds every message's table; regenerate with
    ``python -m common.protocol docs/pilot-api.md`` after changing a message."""
    text = DOC.read_text(encoding="utf-8")
    assert render_blocks(text, MESSAGES) == text, "docs/pilot-api.md disagrees with common/protocol.py"
    for name in ("Registration", "ClaimRequest", "ClaimReply", "Heartbeat", "HeartbeatReply", "AttemptReport",
                 "TaskStats", "ErrorReply"):
        assert f"<!-- protocol: {name} -->" in text, f"docs/pilot-api.md has no table of {name}"
    for reason in Reason:
        assert f"`{reason.value}`" in text, f"docs/pilot-api.md does not explain reason {reason.value}"


GOOD: list[tuple[type, dict[str, Any]]] = [
    (Registration, {"resources": SLOT, "site": "WIPAC", "hostname": "n1", "os": ["RHEL_9_x86_64"],
                    "provider": "htcondor", "provider_job_id": "1.0", "version": "1", "pilot_id": "p-1"}),
    (Registration, {"resources": {"cpu": 1, "memory": 1, "disk": 1}, "os": "RHEL_9_x86_64"}),
    (ClaimRequest, {"pilot_id": "p", "resources": SLOT, "os": [], "site": ""}),
    (Heartbeat, {"free": SLOT, "tasks": ["a", "b"]}),
    (Heartbeat, {"drain": True}),
    (AttemptReport, {"instance_id": "i", "time_used": 5.0, "class": "non-physics", "kind": "memory",
                     "resources": {"memory": 3.2, "gpu": None}, "exit_code": 137, "signal": 9,
                     "outputs": [{"url": "file:///o", "size": 3, "sha512": "a" * 128, "seconds": 0.1}]}),
    (AttemptReport, {"instance_id": "i"}),
    (TaskStats, {"dataset_id": "d", "error_summary": "free-form, as IceProd's grid sent"}),
]
BAD: list[tuple[type, Any, str]] = [
    (Registration, {"resources": {"cpu": 1, "memory": 1}}, "missing key: disk in resources"),
    (Registration, {"resources": {"cpu": 1.5, "memory": 1, "disk": 1}}, "key 'resources.cpu'"),
    (Registration, {"resources": {"cpu": True, "memory": 1, "disk": 1}}, "key 'resources.cpu'"),
    (Registration, {"resources": SLOT, "os": 5}, "key 'os'"),
    (Registration, {"resources": SLOT, "host": "n1"}, "invalid keys found: 'host'"),
    (Registration, [1, 2], "body"),
    (ClaimRequest, {"pilot_id": "p", "resources": {**SLOT, "memory": math.nan}}, "is not a number"),
    (ClaimRequest, {"pilot_id": "p", "resources": {**SLOT, "memory": 1e300}}, "key 'resources.memory'"),
    (ClaimRequest, {"pilot_id": "p"}, "missing key: resources"),
    (Heartbeat, {"tasks": "all"}, "key 'tasks'"),
    (Heartbeat, {"resources": SLOT}, "invalid keys found: 'resources'"),
    (AttemptReport, {"instance_id": "i", "failure_class": "physics"}, "invalid keys found: 'failure_class'"),
    (AttemptReport, {"instance_id": "i", "class": "nonphysics"}, "key 'class'"),
    (AttemptReport, {"instance_id": "i", "outputs": "x"}, "key 'outputs'"),
    (AttemptReport, {"instance_id": "i", "modules": [1]}, "key 'modules[0]'"),
    (AttemptReport, {"instance_id": "i", "signal": 0}, "key 'signal'"),
    (AttemptReport, {"instance_id": "i", "outputs": [{"url": "u", "sha512": "xyz"}]}, "key 'outputs[0].sha512'"),
    (AttemptReport, {"instance_id": "i", "resources": {"memory": "lots"}}, "key 'resources.memory'"),
    (TaskStats, {"dataset_id": 5}, "key 'dataset_id'"),
]


@pytest.mark.parametrize("message,doc", GOOD)
def test_good_messages_parse_and_round_trip_and_fit_their_json_schema(message: type, doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(json_schema(message)).validate(doc)
    parsed = message.parse(doc)
    again = message.parse(parsed.to_json())
    assert again == parsed


@pytest.mark.parametrize("message,doc,names", BAD)
def test_bad_messages_are_refused_naming_the_field(message: type, doc: Any, names: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        message.parse(doc)
    assert names in str(caught.value)
    if "is not a number" in names:
        return  # NaN passes every JSON Schema range check: only the parser can refuse it
    assert not jsonschema.Draft202012Validator(json_schema(message)).is_valid(doc), \
        "the OpenAPI schema would accept what the server refuses"


def test_one_spelling_per_field() -> None:
    """``class`` (not failure_class), ``hostname`` (not host), ``version`` (not frazil_version)."""
    names = {name for message in MESSAGES.values() for name in message.specs()}
    assert {"class", "hostname", "version"} <= names
    assert not {"failure_class", "host", "frazil_version"} & names
    report = AttemptReport(instance_id="i", failure_class="physics").to_json()
    assert report["class"] == "physics" and "failure_class" not in report


def test_the_claim_reply_keeps_what_a_pilot_needs_and_ignores_more() -> None:
    doc = {"task_id": "t", "instance_id": "i", "dataset_id": "d", "job_id": "j", "job_index": 3, "name": "gen",
           "task_index": 0, "requirements": {"cpu": 1}, "config_version": 2, "config": {"tasks": []},
           "priority": 0.5, "failures": 0}
    reply = ClaimReply.parse(doc)
    assert (reply.job_index, reply.config_version, reply.attempt) == (3, 2, 1)
    with pytest.raises(ProtocolError, match="missing key: instance_id"):
        ClaimReply.parse({k: v for k, v in doc.items() if k != "instance_id"})


def test_errors_carry_a_reason_a_pilot_can_act_on() -> None:
    error = ErrorReply.parse({"code": 404, "error": "pilot p not found", "reason": "unknown_pilot"})
    assert Reason(error.reason) is Reason.UNKNOWN_PILOT
    assert ResourceSet(cpu=1).to_json() == {"cpu": 1}
