"""Records <-> MongoDB documents.

Stored documents are the records' ``to_doc()`` shape plus ``_id`` (the record
id) and a few internal fields the records do not carry:

* ``seq``: creation order (ties of every listing, keyset cursors), taken in
  blocks from the ``counters`` collection so a bulk create costs one round trip;
* ``req`` on tasks: the requirements normalised with the defaults of
  ``common.resources`` (numbers the claim filter compares) plus ``os``/``site``;
* crash markers of the fallback (``creating``, ``pending_attempt``) and the
  dependency wake-up flag ``deps_check``.

Converting back drops everything that is not a record field, so records and
``to_doc()`` never leak storage details.
"""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from ..rules import task_shape
from ..records import (
    Attempt, ConfigVersion, Dataset, DatasetFile, Job, Log, Pilot, ScratchFile, Task, TaskStat, User,
)

R = TypeVar("R")

_FIELDS: dict[type, tuple[str, ...]] = {}


def fields_of(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def from_doc(cls: type[R], doc: dict[str, Any]) -> R:
    """Build a record from a stored document, ignoring internal fields."""
    return cls(**{name: doc[name] for name in fields_of(cls) if name in doc})  # type: ignore[call-arg]


def dataset_from(doc: dict[str, Any]) -> Dataset:
    return from_doc(Dataset, doc)


def job_from(doc: dict[str, Any]) -> Job:
    return from_doc(Job, doc)


def task_from(doc: dict[str, Any]) -> Task:
    return from_doc(Task, doc)


def attempt_from(doc: dict[str, Any]) -> Attempt:
    return from_doc(Attempt, doc)


def log_from(doc: dict[str, Any], data: str) -> Log:
    record = from_doc(Log, {**doc, "data": data})
    return record


def config_from(doc: dict[str, Any]) -> ConfigVersion:
    import json

    return ConfigVersion(dataset_id=doc["dataset_id"], version=doc["version"],
                         config=json.loads(doc["config_json"]), author=doc["author"],
                         comment=doc["comment"], created=doc["created"], sha256=doc["sha256"])


def pilot_from(doc: dict[str, Any]) -> Pilot:
    return from_doc(Pilot, doc)


def user_from(doc: dict[str, Any]) -> User:
    return from_doc(User, doc)


def file_from(doc: dict[str, Any]) -> DatasetFile:
    return from_doc(DatasetFile, doc)


def stat_from(doc: dict[str, Any]) -> TaskStat:
    return from_doc(TaskStat, doc)


def scratch_from(doc: dict[str, Any]) -> ScratchFile:
    return from_doc(ScratchFile, doc)


def normalised_requirements(requirements: dict[str, Any] | None) -> tuple[dict[str, Any], str, str]:
    """(``req`` sub-document, resource class, class key) of a task's requirements.

    ``req`` holds the five resources with defaults applied (what the claim
    compares), ``site`` and ``os``; the class key (``rules.task_shape``) groups
    tasks that fit exactly the same pilots up to their numeric needs.
    """
    shape = task_shape(requirements)
    req = {**shape.need.as_dict(), "os": list(shape.os), "site": shape.site}
    return req, shape.resource_class, shape.class_key
