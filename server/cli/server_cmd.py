"""``frazil server``: the REST API, website and background loops in one process."""
from __future__ import annotations

import argparse
import logging

from aiohttp import web

from common.cli_errors import CliError
from server.logging_setup import setup_logging
from server.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="settings file (TOML or JSON); FRAZIL_* variables override it")
    parser.add_argument("--db", help="store URL: sqlite:///path.db (default sqlite:///./frazil-data/frazil.db) or mongodb://host/db")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument("--provider", choices=["local", "htcondor", "slurm", "none"], help="how pilots are started (default local)")
    parser.add_argument("--local-slots", dest="local_slots", help="resources for local pilots, e.g. cpus=2,memory=4GB")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, db=args.db, host=args.host, port=args.port, provider=args.provider,
                             local_slots=args.local_slots)
    from server.federation.claim import check_pelican_settings

    problems = check_pelican_settings(settings)
    if problems:
        raise CliError("; ".join(problems))
    try:
        setup_logging(settings.log_level)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    from server.app import create_app
    from server.provisioning.pilot_user import needs_pilot_user
    from server.secrets_dir import protect

    protect(settings, pilots_other_user=settings.provider == "local" and bool(settings.local_pilot_user)
            and needs_pilot_user())
    app = create_app(settings)
    log = logging.getLogger("frazil.server")
    log.info("starting", extra={"url": settings.resolved_public_url(), "db": settings.db, "provider": settings.provider})
    try:
        # run_app handles SIGINT/SIGTERM: it stops accepting, finishes requests
        # in flight, then runs the cleanup contexts (loops, provider, store).
        web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None,
                    shutdown_timeout=10)
    except OSError as exc:
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
    log.info("stopped")
    return 0
