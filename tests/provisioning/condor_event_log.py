"""Job event log entries in HTCondor's text format (what schedds and shadows
append to a job's ``log``), for the fake schedd and the event-log tests.

The format: ``NNN (cluster.proc.subproc) YYYY-MM-DD HH:MM:SS text``, indented
detail lines, and ``...`` closing each event. htcondor2's JobEventLog reads
exactly these files.
"""
from __future__ import annotations

import time

_USAGE = "\n".join([
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage",
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage",
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Remote Usage",
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage",
    "\t0  -  Run Bytes Sent By Job", "\t0  -  Run Bytes Received By Job",
    "\t0  -  Total Bytes Sent By Job", "\t0  -  Total Bytes Received By Job",
])


def event_text(kind: str, job_id: str, *, when: float | None = None, reason: str = "", code: int = 0,
               host: str = "node7.example.org") -> str:
    """One event: submit, execute, evicted, held, released, terminated, aborted."""
    cluster, proc = (int(x) for x in job_id.split("."))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() if when is None else when))
    head = f"({cluster:03d}.{proc:03d}.000) {stamp}"
    addr = f"<10.0.0.7:9618?addrs=10.0.0.7-9618&alias={host}>"
    if kind == "submit":
        lines = [f"000 {head} Job submitted from host: <127.0.0.1:9618?addrs=127.0.0.1-9618&alias=schedd>"]
    elif kind == "execute":
        lines = [f"001 {head} Job executing on host: {addr}", f"\tSlotName: slot1@{host}"]
    elif kind == "evicted":
        lines = [f"004 {head} Job was evicted.", "\t(0) Job was not checkpointed.", _USAGE]
    elif kind == "held":
        lines = [f"012 {head} Job was held.", f"\t{reason}", f"\tCode {code} Subcode 0"]
    elif kind == "released":
        lines = [f"013 {head} Job was released.", f"\t{reason}"]
    elif kind == "terminated":
        lines = [f"005 {head} Job terminated.", f"\t(1) Normal termination (return value {code})", _USAGE]
    elif kind == "aborted":
        lines = [f"009 {head} Job was aborted.", f"\t{reason}"]
    else:
        raise ValueError(f"unknown event kind {kind!r}")
    return "\n".join(lines) + "\n...\n"
