"""What every record module shares: the JSON type, time strings and ids."""
from __future__ import annotations

import datetime
import uuid
from dataclasses import asdict
from typing import Any

JsonDict = dict[str, Any]

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def nowstr() -> str:
    """IceProd's timestamp format: UTC, microseconds, no zone suffix."""
    return datetime.datetime.now(datetime.timezone.utc).strftime(TIME_FORMAT)


def new_id() -> str:
    """IceProd-style identifier (``uuid1().hex``), used for every kind of id."""
    return uuid.uuid1().hex


def as_doc(obj: Any) -> JsonDict:
    """The record as a plain JSON document (what ``to_doc()`` returns)."""
    return asdict(obj)
