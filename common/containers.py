"""Which image a task runs in: shared by the server (claim matching, settings) and pilots.

A task names its image with ``container`` (an unpacked image directory, as
the images under ``/cvmfs/singularity.opensciencegrid.org/``, or a ``.sif``
file), or asks for an OS with ``requirements.os`` (CVMFS ``OS_ARCH`` names).
An OS maps to an image through ``os_images`` (server setting, over
:data:`DEFAULT_OS_IMAGES`: IceCube's usual OSG images, as IceProd picked them
from ``os[0]``). In the claim, a pilot that can run containers lists, beside
its own OS, :data:`CONTAINER_NEED` and every OS it has an image for; a task
with ``container`` is matched on :data:`CONTAINER_NEED` alone (the image is
its OS).
"""
from __future__ import annotations

from typing import Any, Mapping

CONTAINER_NEED = "container"
"""The claim's ``os`` word for "this pilot can run a task in an image" (OS_ARCH names are
upper case, so it cannot clash with one)."""

OSG_IMAGES = "/cvmfs/singularity.opensciencegrid.org/opensciencegrid"
DEFAULT_OS_IMAGES: dict[str, str] = {
    "RHEL_7_x86_64": f"{OSG_IMAGES}/osgvo-el7:latest",
    "RHEL_8_x86_64": f"{OSG_IMAGES}/osgvo-el8:latest",
    "RHEL_9_x86_64": f"{OSG_IMAGES}/osgvo-el9:latest",
}


def os_images(overrides: Mapping[str, Any] | None) -> dict[str, str]:
    """:data:`DEFAULT_OS_IMAGES` with ``overrides`` on top (an empty value removes an OS).

    Raises ValueError naming a key or value that is not a string."""
    images = dict(DEFAULT_OS_IMAGES)
    for key, value in (overrides or {}).items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ValueError(f"os_images: expected OS_ARCH = \"image path\" pairs, got {key!r} = {value!r}")
        if value:
            images[key] = value
        else:
            images.pop(key, None)
    return images


def needs_container(container: Any) -> bool:
    """Whether a task's ``container`` value asks for an image."""
    return isinstance(container, str) and bool(container.strip())


def is_sif(image: str) -> bool:
    """A single-file image (only apptainer/singularity can run it)."""
    return image.endswith(".sif")
