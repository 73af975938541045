"""Every process a bare module started, however it daemonized: found by a mark in its environment.

A module outside the sandbox (no bwrap, ``--sandbox off``) runs in a session
of its own, but a child that starts a new session (``setsid``, a double fork)
leaves both its process group and, once re-parented, its tree. Each module
therefore gets ``FRAZIL_MODULE_MARK=<random>`` in its environment, which
children inherit; when the module's main process ends, every process of this
user whose environment carries the mark is killed. A child that clears its
environment *and* leaves the session escapes this; only the sandbox's PID
namespace catches that (docs/pilot.md, "What survives what").
"""
from __future__ import annotations

import os
import signal
import uuid

MARK_VARIABLE = "FRAZIL_MODULE_MARK"


def new_mark() -> str:
    return uuid.uuid4().hex


def marked(mark: str) -> list[int]:
    """Live processes (of this user: others' environments are unreadable) carrying ``mark``."""
    needle = f"{MARK_VARIABLE}={mark}\0".encode()
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                if needle in handle.read() + b"\0":
                    found.append(int(name))
        except OSError:  # gone, or another user's
            continue
    return found


def kill_marked(mark: str) -> list[int]:
    """SIGKILL every process carrying ``mark``; returns their pids."""
    pids = marked(mark)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
    return pids
