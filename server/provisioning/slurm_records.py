"""What Slurm's commands say about pilot jobs, parsed into one record type.

Three sources, because sites differ in what they run:

* ``squeue`` for jobs slurmctld still holds (pending, running, and ended ones
  for ``MinJobAge`` seconds): ``--json`` where the installed Slurm has it
  (21.08+), else a fixed ``-o`` format, one line per array element (``-r``);
* ``sacct`` for jobs that left slurmctld, where accounting storage exists
  (``--json`` or ``-P``);
* the job completion file (``JobCompType=jobcomp/filetxt``, ``JobCompLoc``),
  one ``Key=Value`` line per ended job, where there is no accounting.

Array elements are named ``<array job id>_<task id>`` everywhere, as squeue
prints them and scancel accepts them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from server.provisioning.base import JobState

NAME = "frazil-pilot"
"""``--job-name`` of every pilot (squeue is filtered by it)."""
NO_ARRAY_TASK = 4294967294
"""Slurm's NO_VAL for ArrayTaskId: not an array element."""

_RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SUSPENDED", "SIGNALING", "RESIZING"}
_PENDING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "RESV_DEL_HOLD"}
_FAILED = {"FAILED", "BOOT_FAIL", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT", "DEADLINE", "PREEMPTED",
           "SPECIAL_EXIT", "LAUNCH_FAILED"}
HELD_REASONS = {"JobHeldUser", "JobHeldAdmin"}
"""Pending reasons of a held job: someone held it on purpose; left alone."""
NEVER_RUNS = {"BadConstraints", "PartitionNodeLimit", "PartitionTimeLimit", "InvalidAccount", "InvalidQOS",
              "QOSMaxWallDurationPerJobLimit", "AssocMaxWallDurationPerJobLimit", "PartitionDown",
              "launch failed requeued held"}
"""Pending reasons that will not go away by waiting: the pilot is cancelled as held."""


@dataclass
class SlurmJob:
    job_id: str
    state: JobState
    slurm_state: str
    reason: str = ""
    start: float | None = None
    end: float | None = None
    comment: str = ""
    exit_code: str = ""

    @property
    def ran_for(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


def job_state(slurm_state: str, reason: str = "", exit_code: str = "") -> JobState:
    """Slurm's state (``CANCELLED by 0`` → ``CANCELLED``) as a JobState."""
    word = slurm_state.split()[0].upper() if slurm_state.strip() else ""
    word = word.rstrip("+")
    if word in _PENDING:
        return JobState.HELD if reason in HELD_REASONS or reason in NEVER_RUNS else JobState.PENDING
    if word in _RUNNING:
        return JobState.RUNNING
    if word == "COMPLETED":
        return JobState.FAILED if exit_code and exit_code.split(":")[0] not in ("", "0") else JobState.COMPLETED
    if word == "CANCELLED":
        return JobState.CANCELLED
    if word in _FAILED:
        return JobState.FAILED
    return JobState.UNKNOWN


def _time(value: Any) -> float | None:
    """Epoch seconds from a JSON number (0 = unset) or a ``{"number": ...}`` wrapper."""
    if isinstance(value, dict):
        value = value.get("number") if value.get("set", True) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def expand_tasks(spec: str) -> list[int]:
    """``2-5``, ``1,3,7-9``, ``0-10:2``, ``2-3%4`` (throttle) → the task ids."""
    out: list[int] = []
    for part in spec.split("%")[0].split(","):
        part = part.strip()
        if not part:
            continue
        span, _, step = part.partition(":")
        low, _, high = span.partition("-")
        first, last = int(low), int(high or low)
        out.extend(range(first, last + 1, int(step or 1)))
    return out


def _json_state(value: Any) -> str:
    if isinstance(value, list):  # 23.02+: a list of flags, the base state first
        return str(value[0]) if value else ""
    if isinstance(value, dict):  # sacct: {"current": ..., "reason": ...}
        return _json_state(value.get("current"))
    return str(value or "")


def _exit(value: Any) -> str:
    if isinstance(value, dict):
        code = value.get("return_code")
        code = code.get("number") if isinstance(code, dict) else code
        return f"{code or 0}:{value.get('signal', {}).get('signal_id', 0) if isinstance(value.get('signal'), dict) else 0}"
    return "" if value is None else str(value)


def from_squeue_json(text: str) -> list[SlurmJob]:
    jobs: list[SlurmJob] = []
    for doc in json.loads(text).get("jobs", []):
        if doc.get("name") != NAME:
            continue
        state_word = _json_state(doc.get("job_state"))
        reason = str(doc.get("state_reason") or "")
        array_id = _time(doc.get("array_job_id"))
        task = doc.get("array_task_id")
        task = task.get("number") if isinstance(task, dict) and task.get("set", True) else task
        tasks_spec = str(doc.get("array_task_string") or "")
        common = dict(slurm_state=state_word, reason=reason, start=_time(doc.get("start_time")),
                      end=_time(doc.get("end_time")), comment=str(doc.get("comment") or ""),
                      exit_code=_exit(doc.get("exit_code")))
        state = job_state(state_word, reason, common["exit_code"])  # type: ignore[arg-type]
        if array_id and isinstance(task, int):
            jobs.append(SlurmJob(f"{int(array_id)}_{task}", state, **common))  # type: ignore[arg-type]
        elif array_id and tasks_spec:  # the pending rest of an array, one record for many tasks
            jobs.extend(SlurmJob(f"{int(array_id)}_{t}", state, **common)  # type: ignore[arg-type]
                        for t in expand_tasks(tasks_spec))
        else:
            jobs.append(SlurmJob(str(doc.get("job_id")), state, **common))  # type: ignore[arg-type]
    return jobs


SQUEUE_FORMAT = "%i|%T|%r|%S|%e|%k"
"""job id (array elements as A_T), state, reason, start, end, comment."""


def _iso(value: str) -> float | None:
    import datetime
    value = value.strip()
    if not value or value in ("N/A", "NONE", "Unknown", "None"):
        return None
    try:
        return datetime.datetime.fromisoformat(value).timestamp()  # Slurm prints local time
    except ValueError:
        return None


def from_squeue_text(text: str) -> list[SlurmJob]:
    jobs = []
    for line in text.splitlines():
        parts = line.split("|", 5)
        if len(parts) < 6:
            continue
        job_id, state_word, reason, start, end, comment = parts
        jobs.append(SlurmJob(job_id.strip(), job_state(state_word, reason), state_word, reason, _iso(start),
                             _iso(end), comment.strip()))
    return jobs


SACCT_FIELDS = "JobID,State,Reason,Start,End,ExitCode"


def from_sacct_text(text: str) -> list[SlurmJob]:
    jobs = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 6 or "." in parts[0]:  # job steps (123.batch) are not pilots
            continue
        job_id, state_word, reason, start, end, exit_code = parts[:6]
        jobs.append(SlurmJob(job_id, job_state(state_word, reason, exit_code), state_word, reason, _iso(start),
                             _iso(end), exit_code=exit_code))
    return jobs


def from_sacct_json(text: str) -> list[SlurmJob]:
    jobs = []
    for doc in json.loads(text).get("jobs", []):
        array = doc.get("array") or {}
        task = array.get("task_id")
        task = task.get("number") if isinstance(task, dict) and task.get("set", True) else task
        array_id = array.get("job_id") or 0
        job_id = f"{array_id}_{task}" if array_id and isinstance(task, int) else str(doc.get("job_id"))
        state_word = _json_state(doc.get("state"))
        reason = str((doc.get("state") or {}).get("reason") or "") if isinstance(doc.get("state"), dict) else ""
        times = doc.get("time") or {}
        exit_code = _exit(doc.get("exit_code"))
        jobs.append(SlurmJob(job_id, job_state(state_word, reason, exit_code), state_word, reason,
                             _time(times.get("start")), _time(times.get("end")), exit_code=exit_code))
    return jobs


_PAIR = re.compile(r"(\w+)=(\S*)")


def from_jobcomp(lines: Iterable[str]) -> list[SlurmJob]:
    """Lines of a ``jobcomp/filetxt`` file (``JobId=7 ... JobState=FAILED ... ExitCode=0:53``)."""
    jobs = []
    for line in lines:
        fields = dict(_PAIR.findall(line))
        if "JobId" not in fields or "JobState" not in fields:
            continue
        task = fields.get("ArrayTaskId", "")
        if fields.get("ArrayJobId") and task.isdigit() and int(task) != NO_ARRAY_TASK:
            job_id = f"{fields['ArrayJobId']}_{task}"
        else:
            job_id = fields["JobId"]
        exit_code = fields.get("ExitCode", "")
        jobs.append(SlurmJob(job_id, job_state(fields["JobState"], "", exit_code), fields["JobState"], "",
                             _iso(fields.get("StartTime", "")), _iso(fields.get("EndTime", "")),
                             exit_code=exit_code))
    return jobs
