"""Classify a failed task attempt as physics or non-physics (DESIGN.md §3.4).

Differences from IceProd's reset/failed split (reference §6.6), on purpose:

* Only the TAIL of stderr/stdout/stdlog is read (last 50 lines, at most
  64 KB).  IceProd searched the whole of ``condor.err`` for "killed" or
  "sigterm", so a job that once printed "killed 3 muons" was retried for
  ever.  The error that ended a task is at the end of its output.
* Signals and exit codes are matched structurally: the classifier turns them
  into tokens (``signal:SIGKILL``, ``exit:137``, ``exit-signal:SIGKILL``)
  that ``where: "exit"`` rules match whole.
* When the pilot itself killed the task it says why (``kind_hint``), and that
  wins over anything the task printed while dying.
* Nothing matched: physics (the tutorial's policy: retrying everything
  biases CLSim results and hides real bugs).
"""
from __future__ import annotations

import signal as _signal
from dataclasses import dataclass

from common.errors.ruleset import Rule, load_rules

__all__ = [
    "HINTS",
    "INFRASTRUCTURE_KINDS",
    "PHYSICS_HINTS",
    "TAIL_BYTES",
    "TAIL_LINES",
    "Classification",
    "FailureEvidence",
    "classify",
    "exit_tokens",
    "tail_text",
]

TAIL_LINES = 50
TAIL_BYTES = 64 * 1024

#: What the pilot may say about a kill of its own: kind -> (action, default reason).
HINTS: dict[str, tuple[str, str]] = {
    "memory": ("escalate", "killed by the pilot: over its memory request"),
    "time": ("escalate", "killed by the pilot: over its time request"),
    "disk": ("escalate", "killed by the pilot: over its disk request"),
    "eviction": ("retry", "evicted: the pilot's slot was taken back"),
    "transfer": ("retry", "input or output transfer failed"),
    # The storage refused the token (HTTP 401/403). Retried like a transfer, within the
    # task's retries (a refreshed credential may fix it), so never retried for ever.
    "credentials": ("retry", "the storage refused the credentials"),
    "pilot-lost": ("retry", "the pilot running the task was lost"),
    "container": ("retry", "the task's container could not be used on this worker"),
    # The task asks for something this pilot refuses whatever the try (a file:// output
    # outside the allowed roots): physics class, kind "config": final, never retried.
    "config": ("fail", "the task's config asks for something this pilot refuses (e.g. a file:// output "
                       "outside the allowed roots)"),
}
#: Hints that are the task's own fault: physics class, the task fails at once.
PHYSICS_HINTS = frozenset({"config"})
#: Kinds that are the infrastructure's fault: DESIGN.md §3.4 gives them their
#: own retry budget, so they do not use up the task's retries.
INFRASTRUCTURE_KINDS = frozenset({"eviction", "pilot-lost"})


@dataclass(frozen=True)
class FailureEvidence:
    """What is known about a failed attempt.  ``exit_code`` < 0 is read as
    Python's subprocess convention for "killed by signal -N"."""

    exit_code: int | None = None
    signal: int | None = None
    stderr_tail: str = ""
    stdout_tail: str = ""
    stdlog_tail: str = ""
    reason: str = ""
    kind_hint: str | None = None


@dataclass(frozen=True)
class Classification:
    failure_class: str  # "physics" | "non-physics"
    kind: str
    rule: str | None
    reason: str
    action: str  # "retry" | "fail" | "escalate"

    @property
    def infrastructure(self) -> bool:
        """Whether this failure counts against the infrastructure budget, not the task's retries."""
        return self.kind in INFRASTRUCTURE_KINDS


def tail_text(text: str, lines: int = TAIL_LINES, limit: int = TAIL_BYTES) -> str:
    """The last ``lines`` lines of ``text``, and no more than ``limit`` bytes."""
    if not text:
        return ""
    if len(text) > limit:
        text = text.encode("utf-8", errors="replace")[-limit:].decode("utf-8", errors="ignore")
    parts = text.rstrip("\n").split("\n")
    return "\n".join(parts[-lines:])


def _signal_name(number: int) -> str:
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def exit_tokens(evidence: FailureEvidence) -> list[str]:
    """The structural facts ``where: "exit"`` rules match, e.g.
    ``["exit:137", "exit-signal:SIGKILL"]`` for a shell reporting a killed child."""
    tokens: list[str] = []
    signum = evidence.signal
    code = evidence.exit_code
    if code is not None and code < 0 and signum is None:
        signum, code = -code, None
    if signum is not None:
        tokens += [f"signal:{_signal_name(signum)}", f"signal:{signum}"]
    if code is not None:
        tokens.append(f"exit:{code}")
        # sh and env-shell report a child killed by signal N as status 128+N
        if 128 < code < 128 + 65:
            tokens.append(f"exit-signal:{_signal_name(code - 128)}")
    return tokens


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _texts(evidence: FailureEvidence) -> dict[str, str]:
    return {
        "stderr": tail_text(evidence.stderr_tail),
        "stdout": tail_text(evidence.stdout_tail),
        "stdlog": tail_text(evidence.stdlog_tail),
        "reason": tail_text(evidence.reason),
        "exit": " ".join(exit_tokens(evidence)),
    }


def _matches(rule: Rule, texts: dict[str, str]) -> str | None:
    if rule.condition is None:
        raise ValueError(f"rule {rule.id!r} was not built by load_rules/parse_rules (no compiled pattern)")
    found = rule.condition.search(texts[rule.where])
    if found is None:
        return None
    for condition in rule.also:
        if condition.search(texts[condition.where]) is None:
            return None
    return found


def _fallback_reason(evidence: FailureEvidence, texts: dict[str, str]) -> str:
    for where in ("stderr", "reason"):
        lines = [line for line in texts[where].split("\n") if line.strip()]
        if lines:
            return _one_line(lines[-1])
    tokens = exit_tokens(evidence)
    if tokens:
        return _one_line(" ".join(tokens))
    return "unknown failure"


def classify(evidence: FailureEvidence, rules: list[Rule] | None = None) -> Classification:
    """Decide the class, kind, action and matching rule of a failed attempt.

    Order: the pilot's ``kind_hint``; then ``rules`` (default: :func:`load_rules`)
    in order, first match wins; else physics/unknown.
    """
    hint = evidence.kind_hint
    if hint is not None:
        if hint not in HINTS:
            raise ValueError(f"unknown kind_hint {hint!r}; expected one of {', '.join(HINTS)}")
        action, default_reason = HINTS[hint]
        reason = _one_line(evidence.reason) if evidence.reason.strip() else default_reason
        return Classification("physics" if hint in PHYSICS_HINTS else "non-physics", hint, None, reason, action)
    texts = _texts(evidence)
    for rule in load_rules() if rules is None else rules:
        found = _matches(rule, texts)
        if found is not None:
            label = rule.description or rule.id
            return Classification(rule.failure_class, rule.kind, rule.id, _one_line(f"{label}: {found}"), rule.action)
    return Classification("physics", "unknown", None, _fallback_reason(evidence, texts), "fail")
