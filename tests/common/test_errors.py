"""Failure classification: every rule fires on its example, the tutorial's errors,
precedence, tail-only matching, signals, and operators' rules files."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from common.errors import (
    DEFAULT_RULES_PATH,
    HINTS,
    PHYSICS_HINTS,
    RULES_ENV,
    TAIL_LINES,
    FailureEvidence,
    RulesError,
    classify,
    exit_tokens,
    load_rules,
    parse_rules,
    tail_text,
)

RULES = load_rules()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "failures.md"


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_every_rule_fires_on_its_example(rule: Any) -> None:
    assert rule.example, f"rule {rule.id} needs an example"
    verdict = classify(FailureEvidence(**rule.example), RULES)
    assert verdict.rule == rule.id
    assert (verdict.failure_class, verdict.kind, verdict.action) == (rule.failure_class, rule.kind, rule.action)
    assert "\n" not in verdict.reason and verdict.reason


def test_every_rule_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [r.id for r in RULES if f"`{r.id}`" not in text]
    assert missing == []


def test_required_coverage_of_the_default_rules() -> None:
    """DESIGN.md §3.4 and the tutorial name these non-physics kinds."""
    kinds = {r.kind for r in RULES if r.failure_class == "non-physics"} | set(HINTS)
    assert {"cvmfs", "illegal-instruction", "disk", "memory", "time", "eviction",
            "pilot-lost", "transfer", "gpu", "node"} <= kinds


@pytest.mark.parametrize(("evidence", "cls", "kind"), [
    # tutorial, "Common Errors"
    (FailureEvidence(exit_code=1, stderr_tail="Traceback...\nRuntimeError: OpenCL error: could build the OpenCL program!"),
     "non-physics", "gpu"),
    (FailureEvidence(exit_code=1, stderr_tail="RuntimeError: Internal error: unknown particle id from OpenCL"),
     "physics", "software"),
    (FailureEvidence(exit_code=139, stderr_tail="env-shell.sh: line 189: 8208 Segmentation fault"),
     "physics", "segfault"),
    # tutorial, "recoverable errors"
    (FailureEvidence(exit_code=1, stderr_tail="cvmfs2[1234]: failed to download repository manifest"),
     "non-physics", "cvmfs"),
    (FailureEvidence(exit_code=132, stderr_tail="line 3: 99 Illegal instruction python x.py"),
     "non-physics", "illegal-instruction"),
    (FailureEvidence(exit_code=1, stderr_tail="IOError: [Errno 28] No space left on device: 'out.i3'"),
     "non-physics", "disk"),
    (FailureEvidence(exit_code=1, stderr_tail="MemoryError"), "non-physics", "memory"),
])
def test_tutorial_errors(evidence: FailureEvidence, cls: str, kind: str) -> None:
    verdict = classify(evidence)
    assert (verdict.failure_class, verdict.kind) == (cls, kind)


def test_unknown_failure_is_physics_with_last_stderr_line() -> None:
    verdict = classify(FailureEvidence(exit_code=2, stderr_tail="starting\nValueError: bad energy range\n\n"))
    assert verdict.failure_class == "physics" and verdict.kind == "unknown" and verdict.rule is None
    assert verdict.action == "fail" and verdict.reason == "ValueError: bad energy range"
    assert classify(FailureEvidence()).reason == "unknown failure"
    assert classify(FailureEvidence(exit_code=3)).reason == "exit:3"
    assert classify(FailureEvidence(reason="module gen exited with status 3")).reason == \
        "module gen exited with status 3"


@pytest.mark.parametrize(("hint", "action"), sorted((k, v[0]) for k, v in HINTS.items()))
def test_pilot_hint_wins(hint: str, action: str) -> None:
    # the task printed a physics-looking error while being killed: the pilot knows better
    evidence = FailureEvidence(signal=9, stderr_tail="Segmentation fault", kind_hint=hint,
                               reason=f"module gen: over its {hint}")
    verdict = classify(evidence)
    expected_class = "physics" if hint in PHYSICS_HINTS else "non-physics"
    assert (verdict.failure_class, verdict.kind, verdict.rule, verdict.action) == (expected_class, hint, None, action)
    assert verdict.reason == f"module gen: over its {hint}"
    assert classify(FailureEvidence(kind_hint=hint)).reason == HINTS[hint][1]
    assert verdict.infrastructure == (hint in ("eviction", "pilot-lost"))


def test_resource_hints_escalate() -> None:
    for hint in ("memory", "time", "disk"):
        assert classify(FailureEvidence(kind_hint=hint)).action == "escalate"
    with pytest.raises(ValueError, match="unknown kind_hint 'cosmic-ray'"):
        classify(FailureEvidence(kind_hint="cosmic-ray"))


def test_rules_apply_in_order() -> None:
    # a CVMFS error that crashed the program: the specific text rule comes first
    verdict = classify(FailureEvidence(signal=11, stderr_tail="cvmfs: failed to open catalog\nSegmentation fault"))
    assert verdict.rule == "cvmfs-client"
    # the CLSim bug mentions OpenCL but is physics
    verdict = classify(FailureEvidence(stderr_tail="OpenCL error: could not set up context\n"
                                                   "Internal error: unknown particle id from OpenCL"))
    assert verdict.rule == "clsim-unknown-particle"
    # a caller's list is used as given
    mine = parse_rules([{"id": "mine", "pattern": "segmentation fault", "match": "substring",
                         "where": "stderr", "class": "non-physics", "kind": "node", "action": "retry"}])
    verdict = classify(FailureEvidence(signal=11, stderr_tail="Segmentation fault"), mine + RULES)
    assert (verdict.rule, verdict.failure_class) == ("mine", "non-physics")


def test_only_the_tail_is_read() -> None:
    """IceProd retried for ever when "killed" appeared anywhere in stderr."""
    early = "Traceback: killed 3 muons; No space left on device; cvmfs: error\n"
    noise = "".join(f"event {i} processed\n" for i in range(TAIL_LINES + 10))
    verdict = classify(FailureEvidence(exit_code=1, stderr_tail=early + noise + "ValueError: bad input\n"))
    assert (verdict.failure_class, verdict.rule) == ("physics", None)
    assert verdict.reason == "ValueError: bad input"
    # the same line at the end does count
    verdict = classify(FailureEvidence(exit_code=1, stderr_tail=noise + "OSError: No space left on device\n"))
    assert verdict.rule == "no-space-left"


def test_killed_text_without_sigkill_is_not_memory() -> None:
    verdict = classify(FailureEvidence(exit_code=1, stderr_tail="worker killed the job: SIGTERM handling\nboom"))
    assert verdict.failure_class == "physics"


def test_tail_text_limits_lines_and_bytes() -> None:
    text = "".join(f"{i}\n" for i in range(200))
    assert tail_text(text).split("\n") == [str(i) for i in range(150, 200)]
    big = "x" * 200_000 + "\nlast"
    assert len(tail_text(big).encode()) <= 64 * 1024 and tail_text(big).endswith("last")
    assert tail_text("é" * 70_000)  # a cut inside a multi-byte character is dropped, not an error


@pytest.mark.parametrize(("evidence", "tokens"), [
    (FailureEvidence(signal=9), ["signal:SIGKILL", "signal:9"]),
    (FailureEvidence(exit_code=-11), ["signal:SIGSEGV", "signal:11"]),
    (FailureEvidence(exit_code=137), ["exit:137", "exit-signal:SIGKILL"]),
    (FailureEvidence(exit_code=1), ["exit:1"]),
    (FailureEvidence(exit_code=255), ["exit:255"]),
    (FailureEvidence(), []),
])
def test_exit_tokens(evidence: FailureEvidence, tokens: list[str]) -> None:
    assert exit_tokens(evidence) == tokens


@pytest.mark.parametrize(("evidence", "cls", "kind"), [
    (FailureEvidence(signal=4), "non-physics", "illegal-instruction"),
    (FailureEvidence(exit_code=132), "non-physics", "illegal-instruction"),
    (FailureEvidence(signal=15), "non-physics", "eviction"),
    (FailureEvidence(exit_code=-15), "non-physics", "eviction"),
    (FailureEvidence(signal=7), "non-physics", "node"),
    (FailureEvidence(signal=11), "physics", "segfault"),
    (FailureEvidence(exit_code=139), "physics", "segfault"),
    (FailureEvidence(signal=9, stderr_tail="line 4: 77 Killed python big.py"), "non-physics", "memory"),
    (FailureEvidence(exit_code=137, stdlog_tail="memory.events: oom_kill 1"), "non-physics", "memory"),
    # SIGKILL with no sign of who sent it: not assumed to be transient
    (FailureEvidence(signal=9), "physics", "unknown"),
    # exit 13 must not match a rule for 132 (tokens match whole)
    (FailureEvidence(exit_code=13), "physics", "unknown"),
])
def test_signals(evidence: FailureEvidence, cls: str, kind: str) -> None:
    verdict = classify(evidence)
    assert (verdict.failure_class, verdict.kind) == (cls, kind)


def test_reference_reset_reasons_are_non_physics() -> None:
    """Reference §6.6: every HTCondor reason and condor.err phrase IceProd resets on
    (except bare 'killed'/'sigterm' text, matched structurally instead, and
    segmentation faults, physics by frazil's policy)."""
    reasons = ["_condor_stdout: (errno 2) No such file", "transfer input files failure",
               "transfer output files failure", "cpu consumption limit exceeded", "memory limit exceeded",
               "cgroup memory limit", "local storage limit on worker node exceeded",
               "execution time limit exceeded", "exceeded max iceprod queue time", "job has failed",
               "python-initiated action (by user ice3simusr)"]
    for reason in reasons:
        assert classify(FailureEvidence(reason=reason.upper())).failure_class == "non-physics", reason
    stderr = ["bus error (core dumped)", "bus error /cvmfs", "operation timed out", "connection timed out",
              "globus_ftp_client: the operation was aborted", "opencl error: could not set up context",
              "opencl error: could build the opencl program", "python: command not found",
              "cannot read file data: Stale file handle", "setenv: command not found",
              "Cannot contact Pelican director"]
    for line in stderr:
        assert classify(FailureEvidence(exit_code=1, stderr_tail=line)).failure_class == "non-physics", line
    verdict = classify(FailureEvidence(exit_code=139, stderr_tail="segmentation fault (core dumped)"))
    assert verdict.failure_class == "physics"


# --- operators' rules files -------------------------------------------------

GOOD = {"id": "site-x-flaky-mount", "pattern": "mount lost", "match": "substring", "where": "stderr",
        "class": "non-physics", "kind": "node", "action": "retry"}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "rules.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_custom_rules_file(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, [GOOD]))
    assert [r.id for r in rules] == ["site-x-flaky-mount"]
    verdict = classify(FailureEvidence(exit_code=1, stderr_tail="ERROR: mount lost"), rules)
    assert verdict.rule == "site-x-flaky-mount"
    assert load_rules(write(tmp_path, {"rules": [GOOD]}))[0].id == "site-x-flaky-mount"


def test_rules_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, [GOOD])
    monkeypatch.setenv(RULES_ENV, str(path))
    assert [r.id for r in load_rules()] == ["site-x-flaky-mount"]
    assert classify(FailureEvidence(stderr_tail="mount lost")).rule == "site-x-flaky-mount"
    monkeypatch.delenv(RULES_ENV)
    assert len(load_rules()) == len(RULES)
    assert load_rules(DEFAULT_RULES_PATH) == RULES


@pytest.mark.parametrize(("data", "message"), [
    ("{not json", "not valid JSON"),
    ({"rulez": []}, "expected a list of rules or an object with a 'rules' list"),
    ({"rules": "x"}, "'rules' must be a list"),
    (["x"], "rule 0: must be an object"),
    ([{k: v for k, v in GOOD.items() if k != "kind"}], "rule 0 (site-x-flaky-mount): missing field(s) kind"),
    ([dict(GOOD, patern="x")], "unknown field(s) patern"),
    ([dict(GOOD, where="stdin")], "'where' must be one of stderr, stdout, stdlog, reason, exit; got 'stdin'"),
    ([dict(GOOD, match="glob")], "'match' must be one of substring, regex"),
    ([dict(GOOD, **{"class": "maybe"})], "'class' must be one of physics, non-physics"),
    ([dict(GOOD, action="ignore")], "'action' must be one of retry, fail, escalate"),
    ([dict(GOOD, match="regex", pattern="(unclosed")], "'pattern' is not a valid regular expression"),
    ([dict(GOOD, pattern="  ")], "'pattern' must be a non-empty string"),
    ([dict(GOOD, id="Bad Id")], "'id' must be lower-case"),
    ([GOOD, GOOD], "rule id 'site-x-flaky-mount' appears twice"),
    ([dict(GOOD, **{"class": "physics"})], "a physics rule must have action 'fail'"),
    ([dict(GOOD, action="fail")], "a non-physics rule must retry or escalate"),
    ([dict(GOOD, also={"where": "stderr"})], "'also' must be a list"),
    ([dict(GOOD, also=[{"where": "stderr", "pattern": "x", "match": "substring", "x": 1}])],
     "also[0]: unknown field(s) x"),
    ([dict(GOOD, also=[{"where": "nowhere", "pattern": "x", "match": "substring"}])], "also[0]: 'where'"),
    ([dict(GOOD, example={"stderr": "x"})], "'example' must be an object with keys from"),
])
def test_bad_rules_files_give_clear_errors(tmp_path: Path, data: Any, message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(RulesError, match=re.escape(message)) as info:
        load_rules(path)
    assert str(path) in str(info.value)


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file .*nope.json"):
        load_rules(tmp_path / "nope.json")


def test_rules_file_edit_is_picked_up(tmp_path: Path) -> None:
    path = write(tmp_path, [GOOD])
    assert load_rules(path)[0].kind == "node"
    path.write_text(json.dumps([dict(GOOD, kind="cvmfs")]))
    os.utime(path, (1, 1))  # a different mtime, as a real edit would give
    assert load_rules(path)[0].kind == "cvmfs"
