"""Which image and runtime a task gets on this worker, and what the pilot advertises.

The image: the task's ``container``; else, when the task's ``os`` list does
not hold this worker's own OS, the image ``os_images`` maps the first listed
OS with an image to (IceProd picked it from ``os[0]``). Without an image a
module runs in the bare sandbox (bwrap over the host, read-only, secrets
hidden) where bwrap works and isolation is on, else as a plain process.
Anything that makes the image unusable is a :class:`ContainerError`: the
runner reports it as a non-physics ``container`` failure, so the task is
retried elsewhere.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from common.containers import CONTAINER_NEED, DEFAULT_OS_IMAGES, is_sif, needs_container
from common.resources import RequirementError, parse_os
from pilot.sandbox.runtimes import Runtimes, detect_runtimes
from pilot.sandbox.wrap import TaskSandbox, apptainer, bwrap_bare, bwrap_image


class ContainerError(Exception):
    """The task's image cannot be used here (no runtime, image missing, start failure)."""


@dataclass
class SandboxPolicy:
    """What one pilot (or ``frazil run``) may do; built once, used for every task."""

    runtimes: Runtimes
    host_os: str
    isolate: bool = False
    """Run modules of image-less tasks in the bare bwrap sandbox."""
    hide: list[str] = field(default_factory=list)
    """Paths no module may see (the pilot's directory, token file, the server's data dir)."""
    os_images: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_OS_IMAGES))

    def has_image(self, image: str) -> bool:
        """Whether this worker can start ``image`` (it exists, and a runtime takes its format)."""
        if is_sif(image):
            return bool(self.runtimes.apptainer) and os.path.isfile(image)
        if "://" in image:  # docker://, oras://...: apptainer pulls them
            return bool(self.runtimes.apptainer)
        return self.runtimes.any and os.path.isdir(image)

    def advertised_os(self) -> list[str]:
        """The claim's ``os``: this OS, and with a runtime CONTAINER_NEED and each OS it has an image for."""
        names = [self.host_os]
        if self.runtimes.any:
            names.append(CONTAINER_NEED)
            names += [name for name, image in sorted(self.os_images.items())
                      if name != self.host_os and self.has_image(image)]
        return names

    def image_for(self, container: str, requirements: Mapping[str, Any]) -> str:
        """The image the task runs in ('' for none); ContainerError when its OS has none."""
        if needs_container(container):
            return container.strip()
        try:
            wanted = parse_os(requirements.get("os"))
        except RequirementError as exc:
            raise ContainerError(str(exc)) from None
        if not wanted or self.host_os in wanted:
            return ""
        for name in wanted:
            if name in self.os_images:
                return self.os_images[name]
        raise ContainerError(f"the task needs OS {', '.join(map(str, wanted))}; this worker runs "
                             f"{self.host_os} and os_images maps none of them to an image")

    def for_task(self, container: str, requirements: Mapping[str, Any], workdir: Path,
                 gpus: bool = False, needs: list[str] | None = None) -> TaskSandbox | None:
        """The sandbox of one task (None: plain processes). Raises ContainerError.

        ``needs``: host paths the task's command lines name (a local module
        ``src``, an ``env_shell``): the bare sandbox shows them read-only even
        where they lie under a hidden path (``/tmp``)."""
        image = self.image_for(container, requirements)
        if not image:
            if self.isolate and self.runtimes.bwrap:
                return bwrap_bare(self.runtimes.bwrap, workdir, self.hide, needs or [], gpus=gpus)
            return None
        return self._container(image, workdir, gpus)

    def _container(self, image: str, workdir: Path, gpus: bool) -> TaskSandbox:
        runtimes = self.runtimes
        if not runtimes.any:
            why = f" (bwrap cannot run here: {runtimes.bwrap_problem})" if runtimes.bwrap_problem else ""
            raise ContainerError(f"image {image} requested, but this worker has no container runtime "
                                 f"(apptainer, singularity or a working bwrap){why}")
        if runtimes.apptainer:
            if "://" not in image and not os.path.exists(image):
                raise ContainerError(f"image {image} not found on this worker")
            return apptainer(runtimes.apptainer, image, workdir, gpus=gpus)
        if is_sif(image) or "://" in image:
            raise ContainerError(f"image {image} needs apptainer or singularity; this worker has only "
                                 "bwrap, which runs unpacked image directories")
        if not os.path.isdir(image):
            raise ContainerError(f"image directory {image} not found on this worker")
        assert runtimes.bwrap is not None
        return bwrap_image(runtimes.bwrap, image, workdir, gpus=gpus)


def default_policy() -> SandboxPolicy:
    """This host's runtimes and OS, containers as tasks ask, no sandbox otherwise (``frazil run``)."""
    from pilot.detect import os_string  # detect pulls in psutil; the policy itself does not need it

    return SandboxPolicy(runtimes=detect_runtimes(), host_os=os_string())
