"""Per-task containers and the module sandbox (apptainer, or bwrap over an image or the host).

:class:`SandboxPolicy` decides, per task, which image and runtime its modules
run in; :class:`TaskSandbox` gives the command line that starts one module there.
"""
from __future__ import annotations

from pilot.sandbox.policy import ContainerError, SandboxPolicy, default_policy
from pilot.sandbox.runtimes import Runtimes, detect_runtimes
from pilot.sandbox.wrap import TaskSandbox

__all__ = ["ContainerError", "Runtimes", "SandboxPolicy", "TaskSandbox", "default_policy", "detect_runtimes"]
