"""A real image directory for container tests: Debian's busybox-static plus an os-release of its own."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil

BUSYBOX = "/bin/busybox"
"""Debian's busybox-static (statically linked: runs in an image with no libraries)."""
IMAGE_OS_RELEASE = 'NAME="CentOS Linux"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n'
APPLETS = ("sh", "cat", "ls", "ps", "sleep", "echo", "dd", "setsid", "id", "env", "find", "grep", "tr", "wc")


def build_image(root: Path) -> Path:
    """An unpacked image (apptainer's sandbox format) with /bin/busybox, its applets and /etc/os-release."""
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    os.symlink("bin", root / "sbin")  # a top-level symlink, as merged-/usr images have
    (root / "etc" / "os-release").write_text(IMAGE_OS_RELEASE)
    return root


def leftovers(text: str) -> list[psutil.Process]:
    """Live (not zombie) processes whose command line contains ``text``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if text in " ".join(proc.info["cmdline"] or []) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found
