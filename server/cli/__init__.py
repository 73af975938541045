"""The ``frazil`` command: one entry point, one module per subcommand.

Every subcommand module exposes ``add_arguments(parser)`` and
``run(args) -> int``. Errors users can cause end as one clear line on stderr
and a non-zero exit (DESIGN.md §3.1), never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from common.version import __version__
from common.cli_errors import CliError

# name -> (module, one-line help). Modules are imported only when chosen, so
# `frazil pilot` on a worker node never loads the server's dependencies.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "server": ("server.cli.server_cmd", "run the server: REST API, website, scheduling and pilot provisioning"),
    "token": ("server.cli.token", "mint access tokens for this installation"),
    "submit": ("server.cli.submit", "submit a dataset (checked locally first)"),
    "status": ("server.cli.status", "list datasets, or show one dataset's jobs and tasks by status"),
    "logs": ("server.cli.logs", "show the newest logs of a task"),
    "config": ("server.cli.config_cmd", "show a dataset's config (any version)"),
    "dataset": ("server.cli.dataset", "suspend, reset, hard-reset or truncate a dataset"),
    "extend": ("server.cli.extend", "give a dataset more jobs (they run; a complete dataset resumes)"),
    "basic-submit": ("server.cli.basic_submit", "run one script over many files: one job per line of a file list"),
    "validate": ("server.cli.validate", "check a dataset config; print every problem with its JSON path"),
    "pilot": ("pilot.cli", "run a pilot: claim and run tasks in this slot, report them to the server"),
    "run": ("pilot.standalone", "run (or print) one job's tasks locally, without a server"),
    "federation": ("server.cli.federation_cmd", "serve a Pelican director and origin on 127.0.0.1 (osdf:// on one machine)"),
    "provenance": ("server.cli.provenance", "which dataset/job/task/attempt/config made this file"),
    "reset": ("server.cli.reset", "reset, suspend or hard-reset the tasks of a dataset that match a filter"),
    "accounting": ("server.cli.accounting_cmd", "wall, core and GPU hours per day by dataset, user, group or site"),
    "alerts": ("server.cli.alerts_cmd", "list, add or delete your alert subscriptions (webhook, e-mail)"),
    "quarantine": ("server.cli.quarantine_cmd", "list, add or lift quarantines of bad hosts and sites (admins)"),
}


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first non-option word)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in SUBCOMMANDS else None
    return None


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """Only the chosen subcommand's module is imported (the others are listed
    by name and help text), so ``frazil pilot`` stays light on a worker node."""
    parser = argparse.ArgumentParser(prog="frazil", description="frazil: pilot-based dataset production")
    parser.add_argument("--version", action="version", version=f"frazil {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen(words))
    args = parser.parse_args(words)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except CliError as exc:
        print(f"frazil {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"frazil {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if args.debug:
            raise
        print(f"frazil {args.command}: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
