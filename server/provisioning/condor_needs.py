"""What an HTCondor pilot of one demand group asks for beyond its size (issue 14 item 4).

Demand groups queued work by (OS/container need, GPU, batchsys group) and a
pilot shape carries the group's ``os`` words and ``group``. Here they become
submit-description parts:

* a ``container`` need (tasks naming an image): ``HAS_SINGULARITY =?= True``,
  the slot must let the pilot start images (apptainer in the glidein);
* an OS need the site does not run natively (its ``os`` list) but
  ``os_images`` has an image for: with bootstrap ``container`` the pilot
  (already in ``pilot_image``) runs the tasks in that image, so
  ``HAS_SINGULARITY``; with bootstrap ``shared``/``bundle`` the pilot has no
  container runtime path of its own, so it is itself started in the image
  (``+SingularityImage``, with ``--image-os`` so it advertises that OS and
  not the host's from the machine ad);
* a batchsys group: ``--group`` (it claims only that group's tasks), the
  group's ``condor`` entries as ``+key = value`` lines, and its
  ``requirements`` entry AND-ed to the pilot's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from common.batchsys import condor_lines
from common.containers import CONTAINER_NEED
from server.provisioning.base import PilotShape

HAS_RUNTIME = "(TARGET.HAS_SINGULARITY =?= True)"


@dataclass
class PilotNeeds:
    requirements: list[str] = field(default_factory=list)
    """ClassAd expressions AND-ed to the site's requirements."""
    image: str = ""
    """An OS image the pilot itself starts in (``+SingularityImage``; '' for none)."""
    arguments: list[str] = field(default_factory=list)
    """Pilot flags (``--group G``, ``--image-os OS``)."""
    lines: list[str] = field(default_factory=list)
    """Extra ``+key = value`` lines (the group's batchsys)."""


def pilot_needs(shape: PilotShape, *, site_os: Sequence[str], images: Mapping[str, str], bootstrap: str,
                batchsys: Mapping[str, Any] | None) -> PilotNeeds:
    needs = PilotNeeds()
    if shape.os and not set(shape.os) & set(site_os):
        if CONTAINER_NEED in shape.os:
            needs.requirements.append(HAS_RUNTIME)
        else:
            named = next((name for name in shape.os if images.get(name)), "")
            if named:
                needs.requirements.append(HAS_RUNTIME)
                if bootstrap != "container":
                    needs.image = images[named]
                    needs.arguments += ["--image-os", named]
    if shape.group:
        needs.arguments += ["--group", shape.group]
        lines, requirement = condor_lines(batchsys)
        needs.lines += lines
        if requirement:
            needs.requirements.append(f"({requirement})")
    return needs
