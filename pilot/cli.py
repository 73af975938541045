"""``frazil pilot``: run a pilot in this slot until it is idle, drained, out of
lifetime or terminated (DESIGN.md §3.1, §3.5).

    frazil pilot --server URL [--token T | --token-file F]
                 [--cpus N --gpus N --memory GB --disk GB --time HOURS --site NAME]

The server address and token may also come from ``FRAZIL_URL`` and
``FRAZIL_TOKEN`` / ``FRAZIL_TOKEN_FILE``. The token must be a *pilot* token
(``frazil token create --user pilot-1 --role pilot``; an IceProd-style *system* token works too).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pathlib
import signal
import sys
from typing import TYPE_CHECKING

from common.cli_errors import CliError
from common.client import ENV_TOKEN_FILE, ENV_URL, token_from_env, url_from_env
from common.resources import parse_duration, parse_size

if TYPE_CHECKING:
    from pilot.pilot import Pilot
    from pilot.sandbox import SandboxPolicy

DEFAULT_WORKDIR = pathlib.Path("frazil-pilot")


def _size(text: str) -> float:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _hours(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative(kind: type, what: str):
    """An argparse type: a ``kind`` number >= 0, with a message naming what was expected."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
        return value
    return parse


def _os_image(text: str) -> tuple[str, str]:
    name, sep, image = text.partition("=")
    if not sep or not name.strip() or not image.strip():
        raise argparse.ArgumentTypeError(f"expected OS_ARCH=IMAGE, got {text!r}")
    return name.strip(), image.strip()


_seconds = _non_negative(float, "a number of seconds")
_count = _non_negative(int, "a whole number")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help=f"the frazil server's address (default: ${ENV_URL})")
    token = parser.add_mutually_exclusive_group()
    token.add_argument("--token", help="a pilot token (default: $FRAZIL_TOKEN)")
    token.add_argument("--token-file", help=f"a file holding the token (default: ${ENV_TOKEN_FILE})")
    slot = parser.add_argument_group("slot (HTCondor's machine/job ads win over these; the host's "
                                     "resources are used for what neither gives)")
    slot.add_argument("--cpus", type=_count, help="cores")
    slot.add_argument("--gpus", type=_count, help="GPUs")
    slot.add_argument("--memory", type=_size, help="memory, GB (or '4GB', '512MB')")
    slot.add_argument("--disk", type=_size, help="disk, GB")
    slot.add_argument("--time", type=_hours, help="lifetime, hours (or '90m', '2h')")
    slot.add_argument("--site", help="site name (default: the ad's GLIDEIN_Site)")
    slot.add_argument("--hostname", default=os.environ.get("FRAZIL_PILOT_HOSTNAME", ""),
                      help="the host name this pilot reports (default: $FRAZIL_PILOT_HOSTNAME, else the machine's); "
                           "attempts, quarantines and the dashboard go by it")
    slot.add_argument("--image-os", help="the OS_ARCH of the image the batch system started this pilot in "
                                         "(HTCondor +SingularityImage; beats the machine ad, which names the host's)")
    slot.add_argument("--group", default="", type=_group,
                      help="the batchsys group (batchsys-<16 hex>) the provider started this pilot for: it claims "
                           "only that group's tasks (docs/pilot.md)")
    slot.add_argument("--os", help="this worker's OS in CVMFS OS_ARCH form, e.g. RHEL_9_x86_64 "
                                   "(default: the machine ad's, else /etc/os-release and the machine)")
    box = parser.add_argument_group("containers and the module sandbox (docs/pilot.md)")
    box.add_argument("--os-image", action="append", default=[], metavar="OS=IMAGE", type=_os_image,
                     help="image for tasks asking for OS (over the server's os_images); repeatable")
    box.add_argument("--sandbox", choices=["auto", "on", "off"], default="auto",
                     help="run modules of tasks without an image in a bwrap sandbox that hides the pilot's "
                          "files: auto = where bwrap works (default), on = refuse to start without it, off")
    box.add_argument("--hide", action="append", default=[], metavar="PATH",
                     help="a path no module may see (e.g. the server's data dir); repeatable")
    parser.add_argument("--workdir", default=str(DEFAULT_WORKDIR),
                        help="task work dirs and the report spool (default: ./frazil-pilot)")
    parser.add_argument("--idle-timeout", type=_seconds, default=300.0,
                        help="exit after this many seconds without work (default 300)")
    parser.add_argument("--max-backoff", type=_seconds, default=60.0,
                        help="longest wait between claims when the server has nothing (default 60 s)")
    parser.add_argument("--claim-wait", type=_seconds, default=20.0,
                        help="seconds an idle claim waits on the server for work (default 20; the server caps "
                             "it; 0: poll with back-off)")
    parser.add_argument("--heartbeat", type=_seconds, default=None,
                        help="seconds between heartbeats (default: what the server asks for)")
    parser.add_argument("--lifetime-margin", type=_seconds, default=120.0,
                        help="stop claiming this many seconds before the slot ends (default 120)")
    parser.add_argument("--term-grace", type=_seconds, default=10.0,
                        help="seconds a module gets between SIGTERM and SIGKILL (default 10)")
    parser.add_argument("--monitor-interval", type=_seconds, default=1.0,
                        help="seconds between resource samples of running modules (default 1)")
    parser.add_argument("--keep-workdirs", action="store_true", help="keep each task's work dir after its report")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _token(args: argparse.Namespace) -> str:
    if args.token is not None:
        if not args.token.strip():
            raise CliError("--token is empty")
        return args.token.strip()
    if args.token_file:
        try:
            token = pathlib.Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CliError(f"--token-file {args.token_file}: cannot read: {exc.strerror or exc}") from None
        if not token:
            raise CliError(f"--token-file {args.token_file}: the file is empty")
        return token
    return token_from_env()


def _url(args: argparse.Namespace) -> str:
    if args.server is None:
        return url_from_env()
    url = args.server.strip()
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--server {args.server!r}: expected an http:// or https:// address")
    return url.rstrip("/")


def run(args: argparse.Namespace) -> int:
    # Imported here: `frazil pilot --help` must not need psutil/aiohttp to work.
    from pilot.detect import Flags, detect_slot
    from pilot.pilot import Pilot, PilotConfig

    url, token = _url(args), _token(args)
    workdir = pathlib.Path(args.workdir).resolve()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--workdir {args.workdir}: {exc.strerror or exc}") from None
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    slot = detect_slot(workdir, Flags(cpus=args.cpus, gpus=args.gpus, memory=args.memory, disk=args.disk,
                                      time=args.time, site=args.site, os=args.os, image_os=args.image_os))
    if slot.cpu < 1 or slot.memory <= 0:
        raise CliError(f"this slot has no room for any task: {slot.cpu} cores, {slot.memory} GB memory")
    config = PilotConfig(url=url, token=token, workdir=workdir, slot=slot, idle_timeout=args.idle_timeout,
                         max_backoff=args.max_backoff, claim_wait=min(args.claim_wait, 25.0),
                         heartbeat=args.heartbeat, lifetime_margin=args.lifetime_margin, term_grace=args.term_grace,
                         keep_workdirs=args.keep_workdirs, monitor_interval=args.monitor_interval or 1.0,
                         sandbox=_policy(args, slot.os),
                         os_image_flags=dict(args.os_image), hostname=args.hostname, group=args.group,
                         provider=os.environ.get("FRAZIL_PROVIDER", ""),
                         provider_job_id=os.environ.get("FRAZIL_PROVIDER_JOB_ID", ""))
    return asyncio.run(_main(Pilot(config)))


def _group(value: str) -> str:
    from common.batchsys import is_group
    if value and not is_group(value):
        raise argparse.ArgumentTypeError(f"{value!r}: expected batchsys- and 16 hex digits")
    return value


def _policy(args: argparse.Namespace, host_os: str) -> "SandboxPolicy":
    """The pilot's sandbox policy; ``--sandbox on`` without a working bwrap is an error."""
    from pilot.sandbox import SandboxPolicy, detect_runtimes

    runtimes = detect_runtimes()
    if args.sandbox == "on" and not runtimes.bwrap:
        raise CliError("--sandbox on: bwrap cannot run here"
                       + (f" ({runtimes.bwrap_problem})" if runtimes.bwrap_problem else " (not installed)"))
    hide = [str(pathlib.Path(p).resolve()) for p in args.hide]
    if args.token_file:
        hide.append(str(pathlib.Path(args.token_file).resolve()))
    return SandboxPolicy(runtimes=runtimes, host_os=host_os, isolate=args.sandbox != "off" and bool(runtimes.bwrap),
                        hide=hide)


async def _main(pilot: "Pilot") -> int:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, pilot.stop)
    return await pilot.run()
