"""Run one module: argv without a shell, in the work dir, watched by the monitor.

stdout and stderr go through pipes into the attempt's ``stdout``/``stderr``
files (appended, so one file per attempt with every module in order) and, as
complete lines, to the live stream. The module runs in its own session so the
runner can signal its whole tree, and so a SIGTERM aimed at the pilot's
process group does not reach it before the pilot decides what to do.
"""
from __future__ import annotations

import asyncio
import pathlib
import json
import os
import resource
import shutil
import signal
import time
from dataclasses import dataclass
from typing import IO, Mapping

from common.commands import clean_environment
from common.plan.records import ModulePlan, TrayPlan
from pilot.runner.monitor import LimitSource, Monitor, Usage, kill_tree
from pilot.runner.marker import MARK_VARIABLE, kill_marked, new_mark
from pilot.runner.result import RECORDED_ENV, ModuleRecord
from pilot.runner.runtime_status import BwrapStatus, runtime_outcome
from pilot.runner.shellvars import resolve
from pilot.runner.stdlog import StdLog, tail
from pilot.runner.streaming import Streamer
from pilot.runner.workdir import WorkDir
from pilot.sandbox import TaskSandbox

CHUNK = 1 << 16
TAIL_BYTES = 64 * 1024
PIPE_DRAIN_GRACE = 5.0
"""Seconds to wait for the pipes to close after the module exits (a leftover
background process may hold them open; it is then killed)."""


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # real-time signals have no name
        return f"SIG{number}"


class _ExactCpu:
    """Exact CPU time of a module that ran alone in this process.

    Sampling misses what a process used after its last sample (all of it for
    a module shorter than the interval). The kernel's rusage of reaped
    children is exact but per process, not per child: it is used only when no
    other module started or ended meanwhile (always so for ``frazil run``).
    """

    running = 0
    epoch = 0

    def __init__(self) -> None:
        _ExactCpu.running += 1
        _ExactCpu.epoch += 1
        self._epoch = _ExactCpu.epoch
        self._alone = _ExactCpu.running == 1
        self._start = self._children_cpu()

    @staticmethod
    def _children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def finish(self) -> float:
        """CPU seconds of the module (0.0 when it did not run alone)."""
        alone = self._alone and _ExactCpu.epoch == self._epoch
        used = self._children_cpu() - self._start
        _ExactCpu.running -= 1
        _ExactCpu.epoch += 1
        return used if alone else 0.0


@dataclass
class ModuleOutcome:
    record: ModuleRecord
    stdout_tail: str
    stderr_tail: str
    killed_for: str | None = None
    """time | memory | disk (monitor) or eviction (stop requested)."""
    detail: str = ""
    pgid: int | None = None

    @property
    def ok(self) -> bool:
        return self.killed_for is None and self.record.exit_code == 0


@dataclass
class ModuleContext:
    """What every module of one attempt shares."""

    workdir: WorkDir
    stdlog: StdLog
    streamer: Streamer
    monitor: Monitor
    usage: Usage
    limits: LimitSource
    stop_event: asyncio.Event | None
    term_grace: float
    environ: Mapping[str, str]
    sandbox: TaskSandbox | None = None
    """The task's image or module sandbox; None: modules are plain child processes."""


def write_configs(module: ModulePlan, workdir: WorkDir, stdlog: StdLog) -> None:
    """Module ``configs``: JSON files the module reads, written before it starts."""
    for name, value in module.configs.items():
        path = workdir.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2), encoding="utf-8")
        stdlog.write(f"wrote config {name}")


async def _pump(stream: asyncio.StreamReader, sink: IO[bytes], name: str,
                streamer: Streamer) -> None:
    partial = b""
    while True:
        block = await stream.read(CHUNK)
        if not block:
            break
        sink.write(block)
        sink.flush()
        partial += block
        cut = partial.rfind(b"\n") + 1
        if cut == 0 and len(partial) < CHUNK:
            continue  # wait for the end of the line unless it is very long
        if cut == 0:
            cut = len(partial)
        streamer.feed(name, partial[:cut].decode("utf-8", errors="replace"))
        partial = partial[cut:]
    if partial:
        streamer.feed(name, partial.decode("utf-8", errors="replace"))


async def _feed_stdin(proc: asyncio.subprocess.Process, text: str | None) -> None:
    if proc.stdin is None:
        return
    try:
        if text:
            proc.stdin.write(text.encode())
            await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the module did not read its program: its exit status tells why
    finally:
        proc.stdin.close()


async def _not_started(record: ModuleRecord, ctx: ModuleContext, message: str) -> ModuleOutcome:
    """A program that cannot be executed ends as a shell would report it (status 127)."""
    with open(ctx.workdir.stderr, "ab") as err:
        err.write((message + "\n").encode())
    ctx.streamer.feed("stderr", message + "\n")
    ctx.stdlog.write(f"module {record.name} could not start: {message}")
    record.exit_code, record.start, record.end = 127, time.time(), time.time()
    return ModuleOutcome(record=record, stdout_tail="", stderr_tail=message + "\n")


_SETPRIV = shutil.which("setpriv")


def _die_with_pilot(argv: list[str], env: dict[str, str], cwd: object, wrapped: bool = False) -> list[str]:
    """Modules run in their own session (so a kill reaches their whole tree);
    util-linux's ``setpriv --pdeathsig`` makes the module die with the pilot
    too, so a pilot killed with -9 outside HTCondor leaves no orphan running.
    The recorded argv stays the module's own. A ``wrapped`` argv starts a
    container runtime, whose program exists on the host (the module's is in the image)."""
    if not _SETPRIV:
        return argv
    if wrapped:
        return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
    # Only a program that exists is wrapped, so a missing one still fails to
    # start here and is reported like a shell would (status 127).
    program = argv[0] if "/" not in argv[0] or argv[0].startswith("/") else str(pathlib.Path(str(cwd), argv[0]))
    found = shutil.which(program, path=env.get("PATH")) if "/" not in program else (
        program if os.access(program, os.X_OK) else None)
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if found else argv


def _python_fallback(argv: list[str], env_shell: list[str], env: dict[str, str], ctx: ModuleContext) -> list[str]:
    """IceProd runs ``.py`` modules with ``python``; many current systems ship
    only ``python3`` (IceProd 3.2 probes for a ``$PYTHON_BIN`` the same way).
    Under an ``env_shell`` the environment it sets up decides, so only a bare
    ``python`` is replaced."""
    if env_shell or not argv or argv[0] != "python" or shutil.which("python", path=env.get("PATH")) \
            or (ctx.sandbox is not None and ctx.sandbox.image):  # the image's PATH decides
        return argv
    python3 = shutil.which("python3", path=env.get("PATH"))
    if python3 is None:
        return argv
    ctx.stdlog.write(f"no 'python' on PATH; running the module with {python3}")
    return [python3, *argv[1:]]


async def run_module(module: ModulePlan, tray: TrayPlan, ctx: ModuleContext) -> ModuleOutcome:
    record = ModuleRecord(name=module.name, argv=list(module.argv), env_shell=list(module.env_shell),
                          tray=tray.name, iteration=tray.iteration)
    if not module.argv:
        return await _not_started(record, ctx, f"module {module.name}: empty command line")
    write_configs(module, ctx.workdir, ctx.stdlog)
    env = clean_environment(ctx.environ, module.env_clear)
    record.environment = {key: env[key] for key in RECORDED_ENV if key in env}
    box = ctx.sandbox
    mark = ""
    if box is not None:
        env.update(box.env)
    else:  # no PID namespace: a mark its descendants inherit finds them after they daemonize
        mark = env[MARK_VARIABLE] = new_mark()
    argv, unresolved, capture_error = await resolve(module.argv, module.env_shell, env,
                                                    ctx.workdir.root, box.wrap if box else None)
    if capture_error:
        ctx.stdlog.write(f"module {module.name}: could not read env_shell's environment: "
                         f"{capture_error}")
    if unresolved:
        ctx.stdlog.write(f"module {module.name}: variables left as written (not set): "
                         + ", ".join(sorted(unresolved)))
    argv = _python_fallback(argv, module.env_shell, env, ctx)
    record.argv = argv
    out_offset = ctx.workdir.stdout.stat().st_size if ctx.workdir.stdout.exists() else 0
    err_offset = ctx.workdir.stderr.stat().st_size if ctx.workdir.stderr.exists() else 0
    ctx.stdlog.write(f"running module {module.name} (tray {tray.name} iteration "
                     f"{tray.iteration}): {json.dumps(argv)} env_clear={module.env_clear}")
    status = BwrapStatus() if box is not None and box.is_bwrap else None
    command = box.wrap(argv, status.write_fd) if box is not None else argv
    try:
        proc = await asyncio.create_subprocess_exec(
            *_die_with_pilot(command, env, ctx.workdir.root, box is not None), cwd=ctx.workdir.root, env=env,
            stdin=asyncio.subprocess.PIPE if module.stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, pass_fds=status.pass_fds if status else ())
    except OSError as exc:
        if status is not None:
            status.close()
        what = {FileNotFoundError: "command not found", PermissionError: "Permission denied"}
        return await _not_started(record, ctx, f"{command[0]}: {what.get(type(exc)) or exc.strerror or exc}")
    if status is not None:
        status.started()
    record.start = time.time()
    watch = ctx.monitor.watch(proc.pid, ctx.workdir.root, ctx.usage, ctx.limits)
    killed_for: str | None = None
    detail = ""
    with open(ctx.workdir.stdout, "ab") as out, open(ctx.workdir.stderr, "ab") as err:
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [asyncio.create_task(_pump(proc.stdout, out, "stdout", ctx.streamer)),
                 asyncio.create_task(_pump(proc.stderr, err, "stderr", ctx.streamer))]
        feeder = asyncio.create_task(_feed_stdin(proc, module.stdin))
        waiter = asyncio.create_task(_exit_of(proc))
        stopper = asyncio.create_task(ctx.stop_event.wait()) if ctx.stop_event else None
        exact_cpu = _ExactCpu()
        try:
            ctx.monitor.sample_now(watch)
            await asyncio.wait([t for t in (waiter, stopper) if t], return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                killed_for, detail = "eviction", "stopped by the pilot (SIGTERM/eviction)"
                await _terminate(proc, watch.members, ctx, waiter)
            await waiter
        except asyncio.CancelledError:
            kill_tree(watch.members | {proc.pid}, signal.SIGKILL)
            _killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            exact = exact_cpu.finish()
            if stopper is not None:
                stopper.cancel()
            ctx.monitor.unwatch(watch)
            if mark:
                _kill_leftovers(mark, ctx, module.name)
            await _finish_pumps(pumps, watch.members, proc.pid, ctx, module.name)
            feeder.cancel()
    record.end = time.time()
    ctx.usage.cpu_seconds += max(watch.cpu_now, exact)
    if watch.violation is not None and killed_for is None:
        killed_for, detail = watch.violation, watch.detail
    if killed_for is None and ctx.stop_event is not None and ctx.stop_event.is_set():
        killed_for, detail = "eviction", "stopped by the pilot (SIGTERM/eviction)"
    rc = proc.returncode if proc.returncode is not None else -signal.SIGKILL
    stderr_tail = tail(ctx.workdir.stderr, TAIL_BYTES, err_offset)
    if box is not None and killed_for is None:
        rc, trouble = runtime_outcome(box, status, rc, stderr_tail)
        if trouble:
            killed_for, detail = "container", trouble
    if status is not None:
        status.close()
    record.exit_code, record.signal = (rc, None) if rc >= 0 else (None, -rc)
    record.killed_for = killed_for
    ended = f"exit code {rc}" if rc >= 0 else f"signal {-rc} ({signal_name(-rc)})"
    ctx.stdlog.write(f"module {module.name} ended: {ended} after "
                     f"{record.end - record.start:.2f} s"
                     + (f"; killed by the runner: {detail}" if killed_for else ""))
    return ModuleOutcome(record=record, killed_for=killed_for, detail=detail, pgid=proc.pid,
                         stdout_tail=tail(ctx.workdir.stdout, TAIL_BYTES, out_offset),
                         stderr_tail=stderr_tail)


async def _exit_of(proc: asyncio.subprocess.Process) -> int:
    """The module's main process ended (its return code), even while others hold its pipes.

    ``proc.wait()`` also waits for stdout/stderr to close, so a background child
    holding them would hold the task; the process's own end is seen through a
    pidfd (Linux >= 5.3), else by polling the return code the child watcher sets."""
    loop = asyncio.get_running_loop()
    try:
        fd: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here, or already gone
        fd = None
    if fd is not None:
        ended: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, lambda: ended.done() or ended.set_result(None))
        try:
            await ended
        finally:
            loop.remove_reader(fd)
            os.close(fd)
    delay = 0.001
    while proc.returncode is None:  # the watcher reaps it a moment later
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return proc.returncode


async def _terminate(proc: asyncio.subprocess.Process, members: set[int], ctx: ModuleContext,
                     waiter: asyncio.Task[int]) -> None:
    """SIGTERM the tree, give it ``term_grace`` seconds to end cleanly, then SIGKILL."""
    ctx.stdlog.write(f"stop requested: SIGTERM to process tree {sorted(members)}")
    kill_tree(members | {proc.pid}, signal.SIGTERM)
    _killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(waiter), timeout=ctx.term_grace)
    except asyncio.TimeoutError:
        ctx.stdlog.write(f"still running after {ctx.term_grace:.0f} s: SIGKILL")
        kill_tree(members | {proc.pid}, signal.SIGKILL)
        _killpg(proc.pid, signal.SIGKILL)


def _kill_leftovers(mark: str, ctx: ModuleContext, name: str) -> None:
    """The module's main process ended: what it left running (even in a new session) ends too."""
    pids = kill_marked(mark)
    if pids:
        ctx.stdlog.write(f"module {name}: killed {len(pids)} process(es) it left running: {sorted(pids)}")


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _finish_pumps(pumps: list[asyncio.Task[None]], members: set[int], pgid: int,
                        ctx: ModuleContext, name: str) -> None:
    """Read the pipes to their end; kill leftovers that keep them open."""
    done, pending = await asyncio.wait(pumps, timeout=PIPE_DRAIN_GRACE)
    if pending:
        ctx.stdlog.write(f"module {name}: processes left running hold its output open; "
                         "killing them")
        kill_tree(members, signal.SIGKILL)
        _killpg(pgid, signal.SIGKILL)
        done, pending = await asyncio.wait(pending, timeout=2.0)
        for task in pending:
            task.cancel()
