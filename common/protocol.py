"""The pilot↔server protocol (DESIGN.md §3.2, docs/pilot-api.md): one
dataclass per message, used by the pilot to write and read them and by the
server to check and read them.

One spelling per field. Names follow DESIGN.md §3.2's pinned shapes and
IceProd where it has the field: ``hostname`` (the pinned registration and
IceProd's task stats; the store's column is ``host``, an internal name),
``class`` for the failure class (the pinned ``frazil run`` summary; the
dataclass attribute is ``failure_class`` as ``class`` is a Python keyword),
``version`` for the pilot's frazil version, ``free`` for a heartbeat's free
resources. Task stats stay IceProd's free-form document: the fields below
are checked when present and anything else is stored as sent.

Errors a pilot acts on carry a machine-readable :class:`Reason`
(``{"code": 404, "error": "...", "reason": "unknown_pilot"}``); a pilot
never reads the message text.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from common.wire import Message, ProtocolError, Wire, markdown_table, render_blocks, wire

__all__ = ["AttemptReport", "ClaimReply", "ClaimRequest", "ErrorReply", "Heartbeat", "HeartbeatReply",
           "MESSAGES", "Message", "OutputRecord", "ProtocolError", "Reason", "Registration", "RegistrationReply",
           "ResourceSet",
           "TaskStats", "markdown_table", "render_blocks"]


class Reason(str, enum.Enum):
    """Why the server refused, for the errors a pilot acts on."""

    UNKNOWN_PILOT = "unknown_pilot"
    """The server does not know this pilot_id (never registered, or deleted): register again."""
    PILOT_EXITED = "pilot_exited"
    """The pilot is recorded as exited: it gets no more tasks."""
    DRAINING = "draining"
    """The pilot is asked to drain: claim nothing more, finish and exit."""
    QUARANTINED = "quarantined"
    """The pilot's host or site is quarantined (it failed many tasks others run): claim nothing
    more, finish and exit."""
    NOTHING_FITS = "nothing_fits"
    """No queued task fits now: come back after Retry-After."""
    RATE_LIMITED = "rate_limited"
    """Claiming faster than claim_rate_per_pilot: come back after Retry-After."""
    STALE_INSTANCE = "stale_instance"
    """The claim (instance_id) no longer holds the task: drop the result and what else belongs to it."""
    UNKNOWN_TASK = "unknown_task"
    """No such task (deleted with its dataset): drop the report."""
    LOG_FULL = "log_full"
    """The log holds as much as the server keeps: stop streaming it."""
    REGISTER_ONLY = "register_only"
    """A bootstrap pilot token may only register: use the token the registration answered."""
    OTHER_PILOT = "other_pilot"
    """The pilot token is bound to another pilot_id than the one the request names."""


ID = {"max_length": 64}
TEXT = {"max_length": 1000}
BIG = 1e12


@dataclass
class ResourceSet(Message):
    """cpu/gpu counts, memory/disk in GB, time in hours (of lifetime left; may
    be below 0 at the very end). Bounded so no number overflows a database integer."""

    cpu: int | None = wire("integer", "cores", minimum=0, maximum=1_000_000)
    gpu: int | None = wire("integer", "GPUs", minimum=0, maximum=100_000)
    memory: float | None = wire("number", "GB", minimum=0, maximum=1e9)
    disk: float | None = wire("number", "GB", minimum=0, maximum=BIG)
    time: float | None = wire("number", "hours of lifetime", minimum=-1e6, maximum=1e6)

    def as_dict(self) -> dict[str, Any]:
        return self.to_json()


def resources(doc: str, *keys: str) -> Any:
    """A field of resources; ``keys``: those it must name (the field itself is then required)."""
    return wire("object", doc, message=ResourceSet, require=tuple(keys), required=bool(keys))


@dataclass
class Registration(Message):
    """``POST /pilots``: a pilot says what its slot has in total."""

    resources: ResourceSet = resources("the slot's totals", "cpu", "memory", "disk")
    site: str = wire("string", "site name", default="", **TEXT)
    hostname: str = wire("string", "the worker node's host name", default="", **TEXT)
    os: list[str] = wire("os", "operating systems the slot runs, e.g. RHEL_9_x86_64", factory=list)
    provider: str = wire("string", "the provider that started the pilot (htcondor, slurm, local)", default="",
                         **TEXT)
    provider_job_id: str = wire("string", "its job id there (e.g. 1234.0)", default="", **TEXT)
    version: str = wire("string", "the pilot's frazil version", default="", **TEXT)
    group: str = wire("string", "the batchsys group the pilot was started for (its --group): it claims only "
                      "that group's tasks (common/batchsys.py)", default="", pattern="^(batchsys-[0-9a-f]{16})?$")
    pilot_id: str | None = wire("string", "optional: makes a retried registration idempotent",
                                pattern="^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class RegistrationReply(Message):
    EXTRA = "ignore"

    result: str = wire("string", "the pilot_id to use from now on", required=True)
    os_images: dict[str, str] = wire("object", "the server's os_images setting: OS_ARCH -> container image, for "
                                     "tasks that ask for an OS the pilot does not run", factory=dict,
                                     values=Wire("string", "an image"))
    lease_seconds: float | None = wire("number", "a claimed task not renewed (heartbeat) for this long is "
                                       "reaped", nullable=True)
    heartbeat_seconds: float | None = wire("number", "heartbeat at least this often, from the first one on "
                                           "(at most a third of lease_seconds)", nullable=True)
    token: str | None = wire("string", "the pilot's own token from now on: bound to this pilot_id, short-lived, "
                             "renewed by every heartbeat reply", nullable=True)
    token_expires: float | None = wire("number", "Unix time ``token`` expires", nullable=True)


@dataclass
class ClaimRequest(Message):
    """``POST /task_actions/process``: one task that fits what is free now."""

    pilot_id: str = wire("string", "from the registration", required=True, **ID)
    resources: ResourceSet = resources("what is free now (time: hours of lifetime left)",
                                       "cpu", "memory", "disk", "time")
    os: list[str] | None = wire("os", "default: the registration's")
    site: str | None = wire("string", "default: the registration's", **TEXT)
    hostname: str | None = wire("string", "default: the registration's", **TEXT)
    wait: float = wire("number", "seconds the server may hold the claim until a task that fits is queued "
                       "(capped by the server's claim_wait_max_seconds; 0: answer at once)",
                       default=0.0, minimum=0, maximum=3600)



@dataclass
class ClaimReply(Message):
    """The claimed task with everything needed to run it without another call.
    The server may add more of the task's fields (priority, failures, ...)."""

    EXTRA = "ignore"

    task_id: str = wire("string", "the task", required=True)
    instance_id: str = wire("string", "the claim's fencing token: send it with every report", required=True)
    dataset_id: str = wire("string", "the task's dataset", required=True)
    job_id: str = wire("string", "the task's job", required=True)
    job_index: int = wire("integer", "the job's index in the dataset", required=True)
    name: str = wire("string", "the task's name in the config", required=True)
    task_index: int = wire("integer", "the task's index in the config", required=True)
    requirements: dict[str, Any] = wire("object", "the task's requirements (escalated ones included)",
                                        required=True)
    config_version: int | None = wire("integer", "the config version the task runs", required=True,
                                      nullable=True)
    config: dict[str, Any] | None = wire("object", "that config", nullable=True)
    depends: list[str] = wire("array", "task ids this one waited for", factory=list)
    status: str = wire("string", "processing", default="processing")
    attempt: int = wire("integer", "attempt number (1, 2, ...)", default=1)
    lease_expires: float | None = wire("number", "Unix time the lease ends unless renewed", nullable=True)
    lease_seconds: float = wire("number", "a task not renewed for this long is reaped", default=600.0)
    heartbeat_seconds: float = wire("number", "heartbeat at least this often", default=60.0)
    dataset: int | None = wire("integer", "the dataset number (for macros)", nullable=True)
    jobs_submitted: int | None = wire("integer", "the dataset's jobs (for macros)", nullable=True)
    debug: bool = wire("boolean", "the dataset's debug flag (for macros)", default=False)
    scratch_url: str | None = wire("string", "base URL used as site_temp when the config sets none",
                                   nullable=True)
    files: list[dict[str, Any]] = wire("array", "the job's files (/datasets/{id}/files), when the config "
                                       "uses task_files", factory=list, items=Wire("object", "a file entry"))
    osdf_federation: str | None = wire("string", "the federation osdf:///path URLs go through "
                                       "(pelican://host[:port]; setting osdf_federation)", nullable=True)
    pelican_ca: str | None = wire("string", "only when pelican_ca_file is set: PEM of an extra CA to trust for "
                                  "that federation", nullable=True)
    sources: dict[str, str] = wire("object", "module sources carried at submit: {work-dir path: URL on this "
                                   "server (GET /datasets/{id}/sources/{sha512}, with the pilot's token)}; "
                                   "staged before the module runs", factory=dict)
    file_roots: list[str] = wire("array", "folders file:// outputs may be written below (the server's "
                                 "local_file_roots / grid_file_roots; none: no file:// output)", factory=list,
                                 items=Wire("string", "an absolute folder"))
    file_denied: list[str] = wire("array", "paths below those roots that file:// outputs must not touch (the "
                                  "server's own files)", factory=list, items=Wire("string", "an absolute path"))
    storage_token: str | None = wire("string", "only for tasks that need storage scopes and whose owner has a "
                                     "credential: the bearer token for this attempt's osdf_federation "
                                     "transfers; keep it in memory, drop it when the attempt ends "
                                     "(docs/operators.md)", nullable=True)


@dataclass
class Heartbeat(Message):
    """``PATCH /pilots/{pilot_id}``: free resources and the tasks still running;
    renews their leases."""

    free: ResourceSet | None = resources("what is free now")
    tasks: list[str] = wire("array", "ids of the tasks running", factory=list, max_items=10_000,
                            items=Wire("string", "task id", max_length=64))
    drain: bool | None = wire("boolean", "admins only: ask the pilot to drain (or not)")


@dataclass
class HeartbeatReply(Message):
    EXTRA = "ignore"

    drain: bool = wire("boolean", "finish what runs, claim nothing more, exit", default=False)
    tasks: list[str] = wire("array", "the tasks this pilot still holds; abandon any other", factory=list)
    lease_seconds: float = wire("number", "a task not renewed for this long is reaped", default=600.0)
    heartbeat_seconds: float = wire("number", "heartbeat at least this often", default=60.0)
    token: str | None = wire("string", "a renewed token for this pilot: use it from now on", nullable=True)
    token_expires: float | None = wire("number", "Unix time ``token`` expires", nullable=True)


NUMBER_OR_NULL = Wire("number", "a measured peak", nullable=True, minimum=-BIG, maximum=BIG)
LONG_TEXT = {"nullable": True, "max_length": 1_000_000}
CLASSES = ("physics", "non-physics", "infra")


@dataclass
class OutputRecord(Message):
    """One delivered output, for provenance."""

    EXTRA = "ignore"  # the pilot's transfer record carries more (seconds, local, ok, ...)

    url: str = wire("string", "where it went", required=True, max_length=4096)
    size: int | None = wire("integer", "bytes (required unless skipped)", nullable=True, minimum=0,
                            maximum=2**62)
    sha512: str | None = wire("string", "hex digest (required unless skipped)", nullable=True,
                              pattern="^[0-9a-fA-F]{128}$")
    skipped: bool = wire("boolean", "an optional output that was absent (left out of provenance)",
                         default=False)
    ok: bool = wire("boolean", "false: the transfer failed (left out of provenance)", default=True)

    @property
    def delivered(self) -> bool:
        return self.ok and not self.skipped


RECORDS = {"max_items": 100_000, "items": Wire("object", "a record")}


@dataclass
class AttemptReport(Message):
    """``POST /tasks/{id}/task_actions/complete|reset|failed``: how the attempt
    ended. Only ``instance_id`` is required (IceProd's terse bodies)."""

    instance_id: str = wire("string", "the claim's fencing token", required=True, **ID)
    time_used: float | None = wire("number", "seconds the attempt ran", nullable=True, minimum=0, maximum=1e9)
    resources: dict[str, float | None] = wire("object", "measured peaks in requirement units (cpu, memory, "
                                              "disk, time, gpu, gpumem)", factory=dict, values=NUMBER_OR_NULL)
    site: str = wire("string", "site name", default="", **TEXT)
    hostname: str = wire("string", "the worker node", default="", **TEXT)
    version: str = wire("string", "the pilot's frazil version", default="", **TEXT)
    start: float | None = wire("number", "Unix time the attempt started", nullable=True, minimum=-BIG, maximum=BIG)
    end: float | None = wire("number", "Unix time it ended", nullable=True, minimum=-BIG, maximum=BIG)
    modules: list[dict[str, Any]] = wire("array", "each module run: name, argv, env_shell, exit_code, signal, "
                                         "tray, iteration, start, end", factory=list, **RECORDS)
    inputs: list[dict[str, Any]] = wire("array", "input transfers (url, size, sha512)", factory=list, **RECORDS)
    outputs: list[OutputRecord] = wire("array", "delivered outputs: each needs its size and sha512",
                                       factory=list, max_items=100_000,
                                       items=Wire("object", "an output", message=OutputRecord))
    exit_codes: list[int] = wire("array", "exit codes of the modules (default: from modules)", factory=list,
                                 max_items=100_000,
                                 items=Wire("integer", "exit code", minimum=-1_000_000, maximum=1_000_000))
    failure_class: str | None = wire("string", "failures: the pilot's classification", nullable=True,
                                     enum=CLASSES, name="class")
    kind: str | None = wire("string", "what broke: memory, disk, time, eviction, pilot-lost, transfer, "
                            "cvmfs, ...", **LONG_TEXT)
    rule: str | None = wire("string", "the matching rule's id", **LONG_TEXT)
    reason: str | None = wire("string", "a one-line reason", **LONG_TEXT)
    action: str | None = wire("string", "what the rule asks for (e.g. escalate memory)", **LONG_TEXT)
    exit_code: int | None = wire("integer", "evidence: the last module's exit code", nullable=True,
                                 minimum=-1_000_000, maximum=1_000_000)
    signal: int | None = wire("integer", "evidence: the signal that ended it", nullable=True, minimum=1,
                              maximum=128)
    stdout: str | None = wire("string", "evidence: tail of stdout", **LONG_TEXT)
    stderr: str | None = wire("string", "evidence: tail of stderr", **LONG_TEXT)
    stdlog: str | None = wire("string", "evidence: tail of the module log", **LONG_TEXT)


@dataclass
class TaskStats(Message):
    """``POST /tasks/{id}/task_stats``: statistics of one attempt. IceProd's
    document is free-form (stored under ``stats``): these fields are what the
    pilot sends and are checked when present; other keys are kept."""

    EXTRA = "keep"

    dataset_id: str | None = wire("string", "default: the task's; must match it", **ID)
    task_name: str | None = wire("string", "the task's name", nullable=True, **TEXT)
    attempt: int | None = wire("integer", "attempt number", nullable=True, minimum=0, maximum=1_000_000)
    instance_id: str | None = wire("string", "the claim", nullable=True, **ID)
    pilot_id: str | None = wire("string", "the pilot", nullable=True, **ID)
    site: str | None = wire("string", "site name", nullable=True, **TEXT)
    hostname: str | None = wire("string", "the worker node", nullable=True, **TEXT)
    status: str | None = wire("string", "complete, reset or failed", nullable=True, **TEXT)
    failure_class: str | None = wire("string", "the failure's class", nullable=True, enum=CLASSES, name="class")
    kind: str | None = wire("string", "what broke", nullable=True, **TEXT)
    resources: dict[str, Any] | None = wire("object", "measured peaks", nullable=True)
    requirements: dict[str, Any] | None = wire("object", "what the task asked for", nullable=True)
    time_used: float | None = wire("number", "seconds", nullable=True, minimum=0, maximum=1e9)
    modules: list[dict[str, Any]] | None = wire("array", "name, exit_code, signal, seconds of each module",
                                                nullable=True, **RECORDS)
    transfers: dict[str, Any] | None = wire("object", "files, bytes and seconds moved", nullable=True)
    version: str | None = wire("string", "the pilot's frazil version", nullable=True, **TEXT)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ErrorReply(Message):
    """Every error: IceProd's ``{"code", "error"}``, plus ``reason`` on those a pilot acts on."""

    EXTRA = "ignore"

    code: int = wire("integer", "the HTTP status", required=True)
    error: str = wire("string", "a message for people; names the field at fault", required=True)
    reason: str | None = wire("string", "machine-readable: " + ", ".join(r.value for r in Reason),
                              enum=tuple(r.value for r in Reason))


MESSAGES: dict[str, type[Message]] = {cls.__name__: cls for cls in (
    Registration, RegistrationReply, ClaimRequest, ClaimReply, Heartbeat, HeartbeatReply, AttemptReport, OutputRecord,
    TaskStats, ErrorReply, ResourceSet)}


def main(argv: list[str] | None = None) -> int:
    """``python -m common.protocol docs/pilot-api.md``: rewrite the tables in place."""
    import pathlib
    import sys

    for name in argv if argv is not None else sys.argv[1:]:
        path = pathlib.Path(name)
        path.write_text(render_blocks(path.read_text(encoding="utf-8"), MESSAGES), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
