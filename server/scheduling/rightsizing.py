"""Right-sizing (issue 16.5): per task name, what the tasks ask for against
what they use — memory, disk and time at p50 and p95 — and a suggested
request, from a bounded sample of the dataset's newest complete attempts.

Requested values are the ones the attempt was claimed with (``resources``);
used ones the pilot's measured peaks (``resources_used``: memory and disk in
GB, time in hours; the reported wall time when the peak is missing). The
suggestion is the p95 with ``HEADROOM`` on top, rounded up to a tenth.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

from server.scheduling.forecast import SAMPLE, number, attempt_hours, names_of
from server.store import Attempt, Store

HEADROOM = 1.2
RESOURCES = (("memory", "GB"), ("disk", "GB"), ("time", "h"))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


def _used(attempt: Attempt, resource: str) -> float | None:
    value = attempt.resources_used.get(resource)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return attempt_hours(attempt) if resource == "time" else None


@dataclass
class Sizing:
    name: str
    resource: str
    unit: str
    samples: int
    requested: float | None
    p50: float
    p95: float

    @property
    def suggested(self) -> float:
        return math.ceil(self.p95 * HEADROOM * 10) / 10 or 0.1

    @property
    def advice(self) -> str:
        asked = f" of the {self.requested:g} {self.unit} they ask" if self.requested is not None else ""
        return (f"{self.name} tasks use {self.p95:.1f} {self.unit} {self.resource} at p95{asked}; "
                f"suggested request {self.suggested:g} {self.unit}")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "resource": self.resource, "unit": self.unit, "samples": self.samples,
                "requested": self.requested, "p50": self.p50, "p95": self.p95, "suggested": self.suggested,
                "advice": self.advice}


async def rightsizing(store: Store, dataset_id: str) -> list[Sizing]:
    """One row per (task name, resource) with a measured value, names in sample order."""
    sample = await store.recent_attempts(dataset_id, status="complete", limit=SAMPLE)
    names = await names_of(store, dataset_id, sample)
    per_name: dict[str, list[Attempt]] = {}
    for attempt in sample:
        per_name.setdefault(names.get(attempt.task_id, ""), []).append(attempt)
    out: list[Sizing] = []
    for name in sorted(per_name):
        attempts = per_name[name]
        for resource, unit in RESOURCES:
            used = [u for a in attempts if (u := _used(a, resource)) is not None]
            if not used:
                continue
            asked = [number(a.resources.get(resource), -1.0) for a in attempts if resource in a.resources]
            out.append(Sizing(name, resource, unit, len(used), statistics.median(asked) if asked else None,
                              percentile(used, 50), percentile(used, 95)))
    return out
