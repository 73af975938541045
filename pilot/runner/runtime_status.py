"""How a module started through a container runtime ended: its own exit, or the runtime's failure.

bwrap writes JSON documents to ``--json-status-fd``: ``{"child-pid": N}``
when it forked and ``{"exit-code": N}`` once the module ended. No
``exit-code`` means the module never ran: bwrap could not set up the
sandbox (its ``bwrap: ...`` message says why: a container failure) or could
not exec the program (``execvp``: the module's own "command not found",
exit 127 as a shell reports it). In a PID namespace bwrap reports a module
killed by signal N as 128+N; it is recorded as that signal, as for a bare
module. apptainer reports its own failures as status 255 with ``FATAL:``.
"""
from __future__ import annotations

import json
import os
from typing import Any

from pilot.sandbox import TaskSandbox

_SIGNAL_BASE = 128
_MAX_SIGNAL = 64


class BwrapStatus:
    """The pipe bwrap reports on; the write end goes to bwrap only."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self._write_open = True

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self.write_fd,)

    def started(self) -> None:
        """After the spawn: only bwrap may hold the write end, so EOF means it ended."""
        if self._write_open:
            os.close(self.write_fd)
            self._write_open = False

    def read(self) -> list[dict[str, Any]]:
        """Every document bwrap wrote (call once the module ended); closes the pipe."""
        chunks = []
        try:
            while True:
                block = os.read(self.read_fd, 65536)
                if not block:
                    break
                chunks.append(block)
        except BlockingIOError:  # a leftover holder of the pipe: what is there is enough
            pass
        finally:
            self.close()
        text = b"".join(chunks).decode(errors="replace")
        docs: list[dict[str, Any]] = []
        decoder = json.JSONDecoder()
        at = 0
        while True:
            while at < len(text) and text[at].isspace():
                at += 1
            if at >= len(text):
                break
            try:
                doc, at = decoder.raw_decode(text, at)
            except ValueError:
                break
            if isinstance(doc, dict):
                docs.append(doc)
        return docs

    def close(self) -> None:
        self.started()
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1


def _runtime_line(stderr_tail: str, prefix: str) -> str:
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip().startswith(prefix)]
    return lines[-1] if lines else ""


def runtime_outcome(box: TaskSandbox, status: BwrapStatus | None, rc: int,
                    stderr_tail: str) -> tuple[int, str]:
    """(the module's return code as subprocess reports it, the runtime's failure or '')."""
    if not box.is_bwrap or status is None:
        fatal = _runtime_line(stderr_tail, "FATAL:")
        if rc == 255 and fatal:
            return rc, f"container start failed ({box.runtime}): {fatal}"
        return rc, ""
    exit_codes = [doc["exit-code"] for doc in status.read() if isinstance(doc.get("exit-code"), int)]
    if exit_codes:
        code = exit_codes[-1]
        if _SIGNAL_BASE < code <= _SIGNAL_BASE + _MAX_SIGNAL:
            return -(code - _SIGNAL_BASE), ""
        return code, ""
    if rc < 0:  # bwrap itself was killed from outside: the signal is the outcome
        return rc, ""
    message = _runtime_line(stderr_tail, "bwrap:")
    if "execvp" in message:
        return 127, ""
    return rc, f"container start failed (bwrap): {message or f'exit status {rc} before the module started'}"
