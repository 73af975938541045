"""The command lines that put one task's modules in an image or a sandbox.

Three shapes, each in new PID and IPC namespaces so that the module's whole
process tree ends when its main process does (the namespace's init dies and
the kernel kills the rest), however it daemonizes:

* bwrap over an image directory: a tmpfs root holding the image's top-level
  entries read-only (so no mount point has to exist in the image), the work
  dir at ``/srv`` (as OSG glideins bind the job sandbox), ``/cvmfs`` when the
  host has it, GPU devices, a private ``/tmp``;
* bwrap without an image (the module sandbox): the host's file system
  read-only, with the pilot's directory, its token and the paths the pilot was
  told to hide covered by empty tmpfs, the work dir bound at its own path
  (the only writable place besides a private ``/tmp``);
* apptainer/singularity over a directory or ``.sif`` (``--contain --pid --ipc``,
  work dir at ``/srv``, ``--nv`` when the task has GPUs).

A module sees only what these bind; staging stays outside, in the pilot.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

INSIDE_WORKDIR = "/srv"
"""Where a containerized task's work dir appears (OSG's convention)."""
TMP_BYTES = 1 << 30
"""Size cap of the private /tmp (a tmpfs: memory the monitor cannot charge to the task)."""
_OVERRIDDEN = {"dev", "proc", "tmp", "srv", "sys", "cvmfs"}
"""Image top-level entries replaced by the sandbox's own mounts."""


def gpu_devices() -> list[str]:
    """NVIDIA device nodes (apptainer's --nv binds the same ones)."""
    return sorted(p for p in glob.glob("/dev/nvidia*") if not os.path.isdir(p))


@dataclass
class TaskSandbox:
    """How one task's modules are started: ``wrap(argv)`` gives the command to exec."""

    runtime: str
    """bwrap | apptainer"""
    program: str
    workdir: Path
    image: str = ""
    """'' for the bare module sandbox."""
    inside: str = ""
    """The work dir's path as the module sees it."""
    prefix: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    """Variables set for the module inside (override the task's)."""

    @property
    def is_bwrap(self) -> bool:
        return self.runtime == "bwrap"

    def wrap(self, argv: list[str], status_fd: int | None = None) -> list[str]:
        """The full command line; bwrap writes its JSON status to ``status_fd`` when given."""
        extra = ["--json-status-fd", str(status_fd)] if status_fd is not None and self.is_bwrap else []
        return [self.program, *extra, *self.prefix, "--", *argv] if self.is_bwrap else \
            [self.program, *self.prefix, *argv]

    def describe(self) -> str:
        what = f"image {self.image}" if self.image else "the module sandbox (host file system, read-only)"
        return f"{what} with {self.runtime} ({self.program}); work dir {self.workdir} at {self.inside}"


def _namespaces() -> list[str]:
    return ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--new-session"]


def _devices(gpus: bool) -> list[str]:
    args = ["--dev", "/dev"]
    for device in gpu_devices() if gpus else []:
        args += ["--dev-bind", device, device]
    return args


def _image_root(image: Path) -> list[str]:
    """A tmpfs root with each top-level entry of the image bound read-only."""
    args = ["--tmpfs", "/"]
    for entry in sorted(os.scandir(image), key=lambda e: e.name):
        if entry.name in _OVERRIDDEN:
            continue
        target = f"/{entry.name}"
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry.path), target]
        else:
            args += ["--ro-bind", entry.path, target]
    return args


def bwrap_image(program: str, image: str, workdir: Path, *, gpus: bool) -> TaskSandbox:
    args = [*_namespaces(), *_image_root(Path(image)), *_devices(gpus), "--proc", "/proc",
            "--size", str(TMP_BYTES), "--tmpfs", "/tmp", "--bind", str(workdir), INSIDE_WORKDIR,
            "--chdir", INSIDE_WORKDIR]
    if os.path.isdir("/cvmfs"):
        args += ["--ro-bind", "/cvmfs", "/cvmfs"]
    return TaskSandbox("bwrap", program, workdir, image, INSIDE_WORKDIR, args,
                       {"PWD": INSIDE_WORKDIR, "TMPDIR": "/tmp", "HOME": INSIDE_WORKDIR})


def _hide(path: str) -> list[str]:
    """Cover ``path`` (a directory: an empty tmpfs; a file: /dev/null)."""
    if os.path.isdir(path):
        return ["--tmpfs", path]
    if os.path.lexists(path):
        return ["--ro-bind", "/dev/null", path]
    return []


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def bwrap_bare(program: str, workdir: Path, hide: list[str], needs: list[str], *, gpus: bool) -> TaskSandbox:
    args = [*_namespaces(), "--ro-bind", "/", "/", *_devices(gpus), "--proc", "/proc",
            "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    for covered in ("/var/tmp", "/dev/shm", "/run"):
        if os.path.isdir(covered):
            args += ["--tmpfs", covered]
    for path in sorted(set(hide), key=len):  # parents first, so a child's cover is not hidden again
        args += _hide(path)
    for path in sorted(set(needs)):
        real = os.path.realpath(path)  # a link into a hidden place is as hidden as its target
        if os.path.isfile(real) and not any(_under(p, h) for p in (path, real) for h in hide):
            args += ["--ro-bind", real, path]  # a program the task names, under /tmp for example
    root = str(workdir)
    args += ["--bind", root, root, "--chdir", root]
    return TaskSandbox("bwrap", program, workdir, "", root, args, {"TMPDIR": "/tmp"})


def apptainer(program: str, image: str, workdir: Path, *, gpus: bool) -> TaskSandbox:
    args = ["exec", "--contain", "--pid", "--ipc", "--no-home", "--bind", f"{workdir}:{INSIDE_WORKDIR}",
            "--pwd", INSIDE_WORKDIR]
    if os.path.isdir("/cvmfs"):
        args += ["--bind", "/cvmfs"]
    if gpus:
        args.append("--nv")
    args.append(image)
    return TaskSandbox("apptainer", program, workdir, image, INSIDE_WORKDIR, args,
                       {"PWD": INSIDE_WORKDIR, "TMPDIR": "/tmp", "HOME": INSIDE_WORKDIR})
