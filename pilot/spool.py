"""Reports that must reach the server, kept on local disk until they do.

Every result, final log chunk and statistics document of a task is written
here first (one JSON file per report, written to a temporary name and renamed,
so a killed pilot never leaves half a report; no fsync: a node that loses power
loses its running tasks too, and those come back through their leases) and then delivered in the order it was
written. While the server is unreachable the files wait; a pilot restarted in
the same work dir delivers what its predecessor left. A report the server
refuses for good (409 stale: the task was re-claimed elsewhere; other 4xx:
the body can never be accepted) is dropped, so one bad report never blocks
the ones behind it.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.protocol import Reason
from pilot.api import ServerApi, Unreachable

log = logging.getLogger("frazil.pilot.spool")
MAX_SERVER_ERRORS = 5
"""A report answered 500 this many times is dropped (a server bug must not block the queue)."""


@dataclass
class Entry:
    path: Path
    method: str
    route: str
    body: Any
    what: str


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        existing = [int(p.name.split("-")[0]) for p in directory.glob("*.json") if p.name.split("-")[0].isdigit()]
        self._seq = max(existing, default=0)
        self._errors: dict[Path, int] = {}
        self._stale: set[str] = set()
        """Claims (instance ids) the server refused as stale: their later reports go too."""
        self.delivered = 0
        self.dropped = 0

    def add(self, method: str, route: str, body: Any, what: str = "") -> Path:
        """Persist one report (renamed into place) before any attempt to send it."""
        self._seq += 1
        name = f"{self._seq:012d}-{time.time_ns()}.json"
        final = self.directory / name
        temp = self.directory / f".{name}.tmp"
        data = json.dumps({"method": method, "route": route, "body": body, "what": what})
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(data)
        os.replace(temp, final)
        return final

    def pending(self) -> list[Entry]:
        entries = []
        for path in sorted(self.directory.glob("[0-9]*.json")):
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                entries.append(Entry(path, raw["method"], raw["route"], raw.get("body"), raw.get("what", "")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("dropping unreadable spool file %s: %s", path.name, exc)
                path.unlink(missing_ok=True)
        return entries

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("[0-9]*.json"))

    async def deliver(self, api: ServerApi) -> bool:
        """Send what is pending, oldest first; True when the spool is empty.

        Stops at the first report the server cannot take now (unreachable),
        keeping the order for the next try.
        """
        stale = self._stale
        for entry in self.pending():
            claim = entry.body.get("instance_id") if isinstance(entry.body, dict) else None
            if claim is not None and claim in stale:  # e.g. the stats of a result refused as stale
                log.info("dropping %s: its claim %s was refused as stale", entry.what or entry.route, claim)
                self.dropped += 1
                entry.path.unlink(missing_ok=True)
                continue
            try:
                reply = await api.call(entry.method, entry.route, entry.body)
            except Unreachable as exc:
                log.info("server unreachable, %d report(s) spooled: %s", len(self), exc)
                return False
            if reply.ok:
                self.delivered += 1
            elif reply.status >= 500:
                count = self._errors[entry.path] = self._errors.get(entry.path, 0) + 1
                if count < MAX_SERVER_ERRORS:
                    log.warning("%s %s: %s; will retry", entry.method, entry.route, reply.error)
                    return False
                log.error("dropping %s after %d server errors: %s", entry.what or entry.route, count, reply.error)
                self.dropped += 1
            else:
                # stale (the task is someone else's now); other 4xx: never acceptable.
                log.warning("%s %s refused (%s): dropped", entry.method, entry.route, reply.error)
                self.dropped += 1
                # other_pilot: the task is held by another pilot (e.g. a report left
                # by an earlier pilot in this work dir): as stale for this pilot
                if reply.reason in (Reason.STALE_INSTANCE, Reason.OTHER_PILOT) and claim is not None:
                    stale.add(claim)
            self._errors.pop(entry.path, None)
            entry.path.unlink(missing_ok=True)
        return True

