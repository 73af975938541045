"""A task ends when its module does (issue 11 item 5): whatever the module leaves running (a
background child holding stdout, a child in a new session) is killed when its main process
ends, with or without the sandbox, and a stop request (pilot SIGTERM) works meanwhile."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pilot.sandbox import SandboxPolicy, detect_runtimes
from tests.pilot.container_support import leftovers
from tests.pilot.runner_plans import one_module, run

# a child holding the module's stdout, and one in a new session holding it too
DAEMONS = "sleep {n}1 & setsid sleep {n}2 & echo started"


def sandboxed() -> SandboxPolicy:
    runtimes = detect_runtimes()
    assert runtimes.bwrap, runtimes.bwrap_problem
    return SandboxPolicy(runtimes, host_os="DEBIAN_12_x86_64", isolate=True)


@pytest.mark.parametrize("sandbox", ["none", "bwrap"])
async def test_what_a_module_leaves_running_ends_with_it(tmp_path: Path, sandbox: str) -> None:
    n = 98771 if sandbox == "none" else 98772
    policy = sandboxed() if sandbox == "bwrap" else None
    result = await run(one_module(["/bin/sh", "-c", DAEMONS.format(n=n)]), tmp_path, sandbox=policy)
    assert result.status == "complete", result.reason
    assert leftovers(f"sleep {n}") == []
    stdlog = Path(result.stdlog).read_text()
    # the pipes closed at once: nothing had to be killed for holding them open
    assert "hold its output open" not in stdlog
    if sandbox == "none":
        assert "killed 2 process(es) it left running" in stdlog
    else:
        assert "modules run in the module sandbox" in stdlog


@pytest.mark.parametrize("sandbox", ["none", "bwrap"])
async def test_a_stop_request_ends_the_module_and_its_daemons(tmp_path: Path, sandbox: str) -> None:
    n = 98773 if sandbox == "none" else 98774
    stop = asyncio.Event()
    policy = sandboxed() if sandbox == "bwrap" else None

    async def sigterm_soon() -> None:
        while not leftovers(f"sleep {n}2"):
            await asyncio.sleep(0.05)
        stop.set()

    helper = asyncio.create_task(sigterm_soon())
    program = DAEMONS.format(n=n) + f"; exec sleep {n}3"
    result = await asyncio.wait_for(run(one_module(["/bin/sh", "-c", program]), tmp_path, sandbox=policy,
                                        stop_event=stop, term_grace=2), timeout=60)
    await helper
    assert (result.status, result.kind) == ("reset", "eviction"), result.reason
    assert leftovers(f"sleep {n}") == []


async def test_naming_a_directory_or_a_link_to_a_secret_shows_nothing_hidden(tmp_path: Path) -> None:
    """The sandbox shows host files a command line names (a script under /tmp), but naming
    ``/``, a hidden directory, or a link to a hidden file must not undo the hiding."""
    secret_dir = tmp_path / "server-data"
    secret_dir.mkdir()
    secret = secret_dir / "auth.key"
    secret.write_text("the-signing-key\n")
    link = tmp_path / "innocent.txt"
    link.symlink_to(secret)
    script = tmp_path / "probe.sh"
    script.write_text("#!/bin/sh\nfor f in \"$@\"; do cat \"$f\" 2>/dev/null; cat \"$f/auth.key\" 2>/dev/null; done;"
                      " cat " + str(secret) + " 2>/dev/null; echo done\n")
    policy = sandboxed()
    policy.hide = [str(secret_dir)]
    result = await run(one_module(["/bin/sh", str(script), "/", str(secret_dir), str(link), str(secret)]),
                       tmp_path / "work", sandbox=policy)
    assert result.status == "complete", result.reason
    stdout = Path(result.stdout).read_text()
    assert stdout == "done\n", stdout  # the script itself was visible; the key never
