"""``frazil quarantine [list [--all] | add host|site NAME [--reason R] [--hours H] | lift ID]``
(admins): quarantined hosts and sites (``/quarantines``, docs/operators.md "Quarantine")."""
from __future__ import annotations

import argparse

from common.client import call, client_from_env


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of hours, got {text!r}") from None
    if not 0 < value <= 8760:
        raise argparse.ArgumentTypeError(f"hours must be above 0 and at most 8760, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    shown = verbs.add_parser("list", help="the quarantines in force (default)")
    shown.add_argument("--all", action="store_true", help="also lifted and expired ones")
    add = verbs.add_parser("add", help="quarantine a host or site by hand")
    add.add_argument("kind", choices=("host", "site"))
    add.add_argument("name")
    add.add_argument("--reason", default="", help="why (kept with it)")
    add.add_argument("--hours", type=_hours, default=24.0, help="how long (default 24)")
    lift = verbs.add_parser("lift", help="lift a quarantine")
    lift.add_argument("quarantine_id")


def _line(q: dict) -> str:
    state = f"lifted by {q['lifted_by']} at {q['lifted'][:16]}" if q.get("lifted") else f"until {q['expires'][:16]}"
    return f"{q['quarantine_id']}  {q['kind']:<4}  {q['name']}  ({state} UTC)\n    {q['reason']}"


def run(args: argparse.Namespace) -> int:
    client = client_from_env()
    verb = args.verb or "list"
    if verb == "add":
        body = {"kind": args.kind, "name": args.name, "hours": args.hours, **({"reason": args.reason}
                                                                               if args.reason else {})}
        print("quarantined:\n" + _line(call(client, "POST", "/quarantines", body)))
        return 0
    if verb == "lift":
        print("lifted:\n" + _line(call(client, "DELETE", f"/quarantines/{args.quarantine_id}")))
        return 0
    found = call(client, "GET", "/quarantines", {"all": "true"} if getattr(args, "all", False) else None)
    rows = found["quarantines"]
    print("\n".join(_line(q) for q in rows) if rows else "no host or site is quarantined")
    return 0
