"""Cheap process-tree discovery for the monitor.

psutil's ``children()`` rescans every process on the host on each call; at
1 Hz for many tasks on a busy node that alone would break the monitor's CPU
budget. Here one ``/proc`` listing per tick is shared by all watched trees and
only *new* pids have their parent read. A descendant stays in its tree once
seen, even after being re-parented (a daemonised grandchild is still the
task's and is still killed with it).
"""
from __future__ import annotations

import os

import psutil

_PROC = "/proc"


def _read_ppid(pid: int) -> int | None:
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: the fields start after the last ")".
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None


class ProcTable:
    """pid → parent pid for the whole host, refreshed incrementally."""

    def __init__(self) -> None:
        self.use_proc = os.path.isfile(f"{_PROC}/self/stat")
        self._ppid: dict[int, int] = {}

    def refresh(self) -> None:
        if not self.use_proc:
            return
        pids = {int(name) for name in os.listdir(_PROC) if name.isdigit()}
        for gone in self._ppid.keys() - pids:
            del self._ppid[gone]
        for pid in pids - self._ppid.keys():
            ppid = _read_ppid(pid)
            if ppid is not None:
                self._ppid[pid] = ppid

    def alive(self, pid: int) -> bool:
        if self.use_proc:
            return pid in self._ppid
        return psutil.pid_exists(pid)

    def grow(self, members: set[int]) -> set[int]:
        """Add every live descendant of ``members`` (the call's refresh must be recent)."""
        if not self.use_proc:
            found = set(members)
            for pid in members:
                try:
                    found.update(c.pid for c in psutil.Process(pid).children(recursive=True))
                except psutil.Error:
                    pass
            return found
        found = {pid for pid in members if pid in self._ppid}
        changed = True
        while changed:
            changed = False
            for pid, ppid in self._ppid.items():
                if ppid in found and pid not in found:
                    found.add(pid)
                    changed = True
        return found
