"""Plain records that cross rooms: what the store hands to handlers, loops and
the benchmark, and what they hand back.

They are backend-neutral on purpose: the SQLite and the MongoDB backends both
build exactly these objects, so a handler cannot tell (and must not care)
which one it talks to. ``to_doc()`` gives the IceProd-shaped JSON document
(reference §1.4/§4.6) that the REST layer returns, with frazil's additions.

One module per concern, named like the role interfaces in ``../roles/``;
import from ``server.store.records`` (or ``server.store``), which re-exports
them all.
"""
from __future__ import annotations

from .accounts import DatasetRights, Group, Revocation, Usage, User
from .actions import ACTION_STATUSES, ActionMessage
from .attempts import Attempt, AttemptResult, FailureClass, OutputFile, ProvenanceRecord
from .base import TIME_FORMAT, JsonDict, as_doc, new_id, nowstr
from .credentials import CREDENTIAL_TYPES, OWNER_KINDS, Credential
from .claim import ClaimedTask, ClaimRequest, Outcome, QueueClass, ReportOutcome, RetryPolicy
from .datasets import ConfigVersion, Dataset, NewDataset
from .jobs import Job, NewJob, NewTask, StoragePressure, Task, TaskStat
from .logs_files import DatasetFile, Log, LogRef, NewLog, ScratchFile
from .pilots import HeartbeatReply, NewPilot, Pilot
from .quarantines import QUARANTINE_KINDS, Quarantine
from .alerts import ALERT_EVENTS, AlertEvent, AlertSubscription

__all__ = [
    "ACTION_STATUSES", "ActionMessage", "CREDENTIAL_TYPES", "Credential", "OWNER_KINDS", "Attempt", "AttemptResult", "ClaimRequest", "ClaimedTask",
    "ConfigVersion", "Dataset", "DatasetFile", "DatasetRights", "FailureClass", "Group", "HeartbeatReply",
    "Job", "JsonDict", "Log", "LogRef", "NewDataset", "NewJob", "NewLog", "NewPilot", "NewTask", "Outcome",
    "OutputFile", "Pilot", "ProvenanceRecord", "ALERT_EVENTS", "AlertEvent", "AlertSubscription", "QUARANTINE_KINDS", "Quarantine", "QueueClass", "ReportOutcome", "RetryPolicy", "ScratchFile",
    "StoragePressure",
    "TIME_FORMAT", "Task", "TaskStat", "Usage", "User", "Revocation", "as_doc", "new_id", "nowstr",
]
