"""Tasks in an image with real bubblewrap: the image's OS, staging outside, limits, no leftovers,
and the container failure classes (issue 14 items 1 and 5)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from common.plan.records import DataTransfer
from pilot.runner import Monitor, run_task
from pilot.sandbox import Runtimes, SandboxPolicy, detect_runtimes
from tests.pilot.container_support import build_image, leftovers
from tests.pilot.runner_plans import module, one_module, plan, run, tray

HOST_OS = "DEBIAN_12_x86_64"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_image(tmp_path_factory.mktemp("image") / "el7")


def bwrap_only() -> SandboxPolicy:
    """This host's bwrap and no apptainer, whatever else is installed: the fallback path."""
    runtimes = detect_runtimes()
    assert runtimes.bwrap, f"bwrap must work on this machine: {runtimes.bwrap_problem}"
    return SandboxPolicy(Runtimes(bwrap=runtimes.bwrap), host_os=HOST_OS,
                         os_images={"RHEL_7_x86_64": "/nonexistent/osgvo-el7:latest"})


def _data(url: str, local: str, movement: str) -> DataTransfer:
    return DataTransfer(url=url, local=local, movement=movement, path=f"data[{local}]")


async def test_module_runs_in_the_image_with_staging_outside(image: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("staged input\n")
    target = tmp_path / "results" / "out.txt"
    script = ("cat /etc/os-release; cat in.txt; pwd; ls /; "
              "{ cat /etc/os-release; cat in.txt; } > out.txt; "
              "(sleep 987651 &); setsid sleep 987652 & echo started")
    task = plan([tray([module("m", ["/bin/sh", "-c", script])],
                      data=[_data(source.as_uri(), "in.txt", "input"), _data(target.as_uri(), "out.txt", "output")])],
                container=str(image))
    result = await run(task, tmp_path / "work", sandbox=bwrap_only())
    assert result.status == "complete", result.reason
    stdout = Path(result.stdout).read_text()
    assert 'ID="centos"' in stdout and "staged input" in stdout
    assert Path("/etc/os-release").read_text() not in stdout  # the host's is hidden
    assert "/srv\n" in stdout  # the work dir, where OSG glideins put it
    assert target.read_text() == image.joinpath("etc/os-release").read_text() + "staged input\n"
    assert [o.url for o in result.outputs] == [target.as_uri()]
    stdlog = Path(result.stdlog).read_text()
    assert f"modules run in image {image} with bwrap" in stdlog
    # a background child holding stdout and a new-session child end with the module
    assert leftovers("sleep 98765") == []


async def test_os_picks_the_image_through_os_images(image: Path, tmp_path: Path) -> None:
    policy = bwrap_only()
    policy.os_images = {"RHEL_7_x86_64": str(image)}
    assert policy.advertised_os() == [HOST_OS, "container", "RHEL_7_x86_64"]
    task = one_module(["/bin/cat", "/etc/os-release"], env_clear=True)
    task.requirements = {"os": ["RHEL_7_x86_64"]}
    result = await run(task, tmp_path / "work", sandbox=policy)
    assert result.status == "complete", result.reason
    assert 'ID="centos"' in Path(result.stdout).read_text()
    # the worker's own OS runs natively: no image
    task.requirements = {"os": [HOST_OS, "RHEL_7_x86_64"]}
    native = await run(task, tmp_path / "work", sandbox=policy)
    assert native.status == "complete"
    assert Path(native.stdout).read_text() == Path("/etc/os-release").read_text()


async def test_memory_limit_kills_inside_the_image(image: Path, tmp_path: Path) -> None:
    from common.resources import Resources

    task = one_module(["/bin/sh", "-c", "dd if=/dev/zero of=/dev/null bs=300M count=1000; sleep 987653"])
    task.container = str(image)
    result = await run(task, tmp_path / "work", sandbox=bwrap_only(),
                       limits=Resources(cpu=1, memory=0.1, disk=1, time=1))
    assert (result.status, result.failure_class, result.kind) == ("reset", "non-physics", "memory"), result.reason
    assert result.resources["memory"] > 0.1
    assert leftovers("sleep 987653") == [] and leftovers("bs=300M") == []


async def test_module_failing_inside_is_classified_as_usual(image: Path, tmp_path: Path) -> None:
    task = one_module(["/bin/sh", "-c", "echo 'Segmentation fault' >&2; kill -SEGV $$"])
    task.container = str(image)
    result = await run(task, tmp_path / "work", sandbox=bwrap_only())
    assert result.status in ("failed", "reset") and result.kind != "container"
    assert result.modules[0].signal == 11 and result.modules[0].exit_code is None
    missing = one_module(["/bin/no-such-program"])
    missing.container = str(image)
    result = await run(missing, tmp_path / "work", sandbox=bwrap_only())
    assert result.modules[0].exit_code == 127 and result.kind != "container"


@pytest.mark.parametrize("container, message", [
    ("/nonexistent/image-dir", "image directory /nonexistent/image-dir not found on this worker"),
    ("/images/el7.sif", "needs apptainer or singularity; this worker has only bwrap"),
])
async def test_unusable_image_is_a_nonphysics_container_failure(tmp_path: Path, container: str,
                                                                message: str) -> None:
    task = one_module(["/bin/true"])
    task.container = container
    result = await run(task, tmp_path / "work", sandbox=bwrap_only())
    assert (result.status, result.failure_class, result.kind, result.action) == \
        ("reset", "non-physics", "container", "retry")
    assert message in result.reason and result.modules == []


async def test_no_runtime_and_unmapped_os_are_container_failures(image: Path, tmp_path: Path) -> None:
    task = one_module(["/bin/true"])
    task.container = str(image)
    bare = SandboxPolicy(Runtimes(), host_os=HOST_OS)
    result = await run(task, tmp_path / "work", sandbox=bare)
    assert result.kind == "container" and "no container runtime" in result.reason
    task = one_module(["/bin/true"])
    task.requirements = {"os": ["RHEL_6_x86_64"]}
    result = await run(task, tmp_path / "work", sandbox=bwrap_only())
    assert result.kind == "container" and "os_images maps none of them" in result.reason


async def test_runtime_start_failure_carries_bwraps_message(image: Path, tmp_path: Path) -> None:
    """bwrap itself fails (an image entry vanished after the sandbox was laid out): the
    runtime's own message, as a container failure, not the module's."""
    broken = tmp_path / "broken"
    shutil.copytree(image, broken, symlinks=True)

    class Vanishing(SandboxPolicy):
        def for_task(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            box = super().for_task(*args, **kwargs)
            shutil.rmtree(broken / "etc")
            return box

    policy = bwrap_only()
    task = one_module(["/bin/true"])
    task.container = str(broken)
    result = await run_task(task, workdir_base=tmp_path / "work", monitor=Monitor(interval=0.05),
                            sandbox=Vanishing(policy.runtimes, HOST_OS))
    assert (result.failure_class, result.kind) == ("non-physics", "container"), result.reason
    assert "container start failed (bwrap): bwrap: Can't find source path" in result.reason


def test_frazil_run_uses_the_container_too(image: Path, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "probe.sh").write_text("#!/bin/sh\ncat /etc/os-release > os.txt\ncat in.txt >> os.txt\n")
    (tmp_path / "in.txt").write_text("input of job 0\n")
    config = {"version": 3.2, "tasks": [{
        "name": "el7", "container": str(image),
        "data": [{"type": "permanent", "movement": "input", "local": "in.txt", "remote": (tmp_path / "in.txt").as_uri()},
                 {"type": "permanent", "movement": "output", "local": "os.txt",
                  "remote": f"{(tmp_path / 'out').as_uri()}/os_$(job).txt"}],
        "trays": [{"modules": [{"src": "probe.sh"}]}]}]}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    done = subprocess.run([sys.executable, "-m", "server.cli", "run", str(path), "--job", "0",
                           "--workdir", str(tmp_path / "w"), "--scratch", str(tmp_path / "s")],
                          cwd=repo, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["status"] == "complete"
    assert (tmp_path / "out" / "os_0.txt").read_text() == (image / "etc/os-release").read_text() + "input of job 0\n"
