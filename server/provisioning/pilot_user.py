"""The unprivileged user local pilots run as when the server runs as root.

A pilot (and so every module it runs) must not be able to read what the
server keeps: as root the server could read anything, and a module running
as root could too, sandbox or not. So a root server starts local pilots as
the system user ``frazil-pilot``, created on first use with ``useradd``
(no home, no login shell); each pilot's directory and token file are given
to that user, and nothing else of the data dir is (docs/operators.md,
"Trust boundaries"). A server that is not root runs pilots as itself; the
module sandbox is then the boundary.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PILOT_USER_NAME = "frazil-pilot"


class PilotUserError(RuntimeError):
    """The pilot user does not exist and could not be created."""


@dataclass(frozen=True)
class PilotUser:
    name: str
    uid: int
    gid: int

    def give(self, path: Path) -> None:
        """Make ``path`` this user's (the pilot's directory, its token file)."""
        os.chown(path, self.uid, self.gid)

    def popen_args(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def cannot_run(self, command: list[str], cwd: Path, env: dict[str, str]) -> str:
        """'' when this user can start ``command --help`` in ``cwd``, else why not.

        The program, its interpreter and the repository must be reachable by
        the user (a checkout or a Python under root's 0700 home is not)."""
        try:
            done = subprocess.run([*command, "--help"], cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=60, **self.popen_args())
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{type(exc).__name__}: {exc}"
        if done.returncode != 0:
            return (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1][:300]
        return ""


def needs_pilot_user() -> bool:
    return os.geteuid() == 0


def ensure_pilot_user(name: str = PILOT_USER_NAME) -> PilotUser:
    """The user, created (system account, no home, no shell) if it does not exist yet."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        try:
            done = subprocess.run([useradd, "--system", "--user-group", "--no-create-home",
                                   "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                                  capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PilotUserError(f"cannot create the pilot user {name!r}: {exc}") from None
        if done.returncode != 0 and "already exists" not in done.stderr:
            raise PilotUserError(f"cannot create the pilot user {name!r}: {done.stderr.strip()[:300]}")
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise PilotUserError(f"the pilot user {name!r} is root: pilots must not run as root")
    return PilotUser(name, entry.pw_uid, entry.pw_gid)
