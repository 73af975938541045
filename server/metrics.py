"""Prometheus metrics: the counters and the middleware that fills them
(the ``/metrics`` route itself is in :mod:`server.api.misc`).

Labels are low-cardinality on purpose (IceProd had to strip ids from its
API metrics to keep Prometheus alive): the route *template*
(``/datasets/{dataset_id}``), the method and the status class — never a
dataset, task or pilot id. The exception is IceProd's dataset monitor
(:class:`DatasetCollector`): a ``dataset`` label, bounded to the active
datasets and a cap, filled by a background loop, never counted per scrape.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from server.keys import METRICS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServerMetrics:
    """One registry per app, so several test servers in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("frazil_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("frazil_http_request_seconds", "HTTP request duration",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.claims = Counter("frazil_claims", "claim attempts by result", ["result"], registry=self.registry)
        self.reports = Counter("frazil_task_reports", "task reports by kind and outcome",
                               ["report", "outcome"], registry=self.registry)
        self.loop_runs = Counter("frazil_loop_runs", "background loop iterations", ["loop", "result"],
                                 registry=self.registry)
        self.loop_seconds = Histogram("frazil_loop_seconds", "background loop iteration time", ["loop"],
                                      registry=self.registry)
        self.queued = Gauge("frazil_queued_tasks", "queued tasks (all resource classes)", registry=self.registry)
        self.logs_removed = Counter("frazil_logs_removed", "logs removed by the retention loop",
                                    ["kind"], registry=self.registry)
        self.datasets = DatasetCollector()
        """Per-dataset gauges (the one exception to "no ids in labels": bounded
        to the active datasets, at most ``dataset_metrics_max`` of them)."""
        self.registry.register(self.datasets)


def _route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = _route_label(request)
        metrics.requests.labels(request.method, route, f"{status // 100}xx").inc()
        metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)


@dataclass
class DatasetSnapshot:
    """IceProd's dataset-monitor numbers for the active datasets, as last
    counted by the ``dataset_metrics`` loop (a scrape only reads them).
    Keys are the dataset *number* (the ``dataset`` label)."""

    jobs: dict[int, dict[str, int]] = field(default_factory=dict)
    """{dataset: {job status: count}}"""
    tasks: dict[int, dict[str, dict[str, int]]] = field(default_factory=dict)
    """{dataset: {task name: {task status: count}}}"""
    future_hours: dict[int, dict[str, float]] = field(default_factory=dict)
    """{dataset: {"cpu"|"gpu": slot-hours of the tasks not yet finished}}"""


class DatasetCollector(Collector):
    """Exports a :class:`DatasetSnapshot`; the snapshot is replaced whole, so
    a scrape never sees half of a refresh."""

    def __init__(self) -> None:
        self.snapshot = DatasetSnapshot()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.snapshot
        jobs = GaugeMetricFamily("frazil_dataset_jobs", "jobs by dataset and status", labels=["dataset", "status"])
        for dataset, counts in snap.jobs.items():
            for status, count in counts.items():
                jobs.add_metric([str(dataset), status], count)
        tasks = GaugeMetricFamily("frazil_dataset_tasks", "tasks by dataset, task name and status",
                                  labels=["dataset", "task", "status"])
        for dataset, names in snap.tasks.items():
            for name, counts in names.items():
                for status, count in counts.items():
                    tasks.add_metric([str(dataset), name, status], count)
        future = GaugeMetricFamily("frazil_dataset_future_resource_hours",
                                   "slot-hours the unfinished tasks still need (their task name's mean wall time)",
                                   labels=["dataset", "resource"])
        for dataset, hours in snap.future_hours.items():
            for resource, value in hours.items():
                future.add_metric([str(dataset), resource], value)
        yield jobs
        yield tasks
        yield future
