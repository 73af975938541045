"""Action messages (the queue behind ``/actions/{action}``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import JsonDict, as_doc


ACTION_STATUSES = ("queued", "processing", "error", "complete")


@dataclass
class ActionMessage:
    """A long operation requested through ``/actions/{action}`` (IceProd's
    services queue): submit, edit_config, materialization, dataset_status,
    job_status, task_status. Kept in the store so a restarted server resumes
    them and ``GET /actions/{action}/{id}`` answers from any replica."""

    message_id: str
    action: str
    status: str = "queued"
    payload: JsonDict = field(default_factory=dict)
    priority: int = 10
    created_at: str = ""
    updated_at: str = ""
    attempts: int = 0
    worker_id: str | None = None
    locked_at: float | None = None
    """Epoch seconds when a worker took it (a stale lock is taken over)."""
    error_message: str = ""
    progress: float = 0.0
    """0..100 for bulk status actions."""
    dataset_id: str | None = None
    dedupe_key: str | None = None

    def to_doc(self) -> JsonDict:
        return as_doc(self)
