"""Which container runtimes this worker has (what the pilot advertises).

``apptainer`` (or its older name ``singularity``) is used where installed, as
on OSG workers; else Debian's ``bwrap`` (bubblewrap), if unprivileged user
namespaces let it start here: a probe runs it once, since an installed bwrap
on a host that forbids user namespaces cannot run anything.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Runtimes:
    apptainer: str | None = None
    """apptainer (or singularity) program; runs image directories and .sif files."""
    bwrap: str | None = None
    """bwrap program that passed the probe; runs image directories and the bare sandbox."""
    bwrap_problem: str = ""
    """Why an installed bwrap is not usable (the probe's message)."""

    def names(self) -> list[str]:
        return [name for name, program in (("apptainer", self.apptainer), ("bwrap", self.bwrap)) if program]

    @property
    def any(self) -> bool:
        return bool(self.apptainer or self.bwrap)


def probe_bwrap(program: str) -> str:
    """'' when ``program`` can make a sandbox here, else its error message."""
    try:
        done = subprocess.run([program, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                               "--unshare-pid", "--die-with-parent", "true"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{program}: {exc}"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1][:300]
    return ""


@lru_cache(maxsize=1)
def detect_runtimes() -> Runtimes:
    """The runtimes on PATH (probed once per process)."""
    apptainer = shutil.which("apptainer") or shutil.which("singularity")
    bwrap = shutil.which("bwrap")
    problem = probe_bwrap(bwrap) if bwrap else ""
    return Runtimes(apptainer=apptainer, bwrap=None if problem else bwrap, bwrap_problem=problem)
