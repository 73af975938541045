"""``frazil alerts [list | add --event E ... [--dataset ID] [--webhook URL [--secret S]] [--email A]
[--spike N] [--stalled-hours H] | delete ID] [--user NAME]``: your alert subscriptions
(``/users/{user}/alerts``, docs/rest.md "Alerts")."""
from __future__ import annotations

import argparse
import base64
import json
from typing import Any

from common.cli_errors import CliError
from common.client import call, client_from_env, token_from_env

EVENTS = ("complete", "errors", "failure_spike", "stalled", "quarantine")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="whose alerts (default: the user your token names)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.add_parser("list", help="your subscriptions and their latest events (default)")
    add = verbs.add_parser("add", help="subscribe")
    add.add_argument("--event", action="append", choices=EVENTS, required=True, dest="events",
                     help="an event to hear about (repeat for more)")
    add.add_argument("--dataset", help="one dataset id (default: all of yours)")
    add.add_argument("--webhook", help="http(s) URL the event is POSTed to as JSON")
    add.add_argument("--secret", help="HMAC-SHA256 key of the X-Frazil-Signature header (16+ characters)")
    add.add_argument("--email", help="address the event is mailed to")
    add.add_argument("--spike", type=int, help="failure_spike: more failed attempts per hour than this")
    add.add_argument("--stalled-hours", type=float, help="stalled: nothing finished for this long")
    delete = verbs.add_parser("delete", help="unsubscribe")
    delete.add_argument("subscription_id")


def _token_user() -> str:
    """The user name the token carries (only to build the path: the server checks it)."""
    try:
        payload = token_from_env().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("preferred_username") or claims["sub"])
    except (IndexError, KeyError, ValueError) as exc:
        raise CliError(f"cannot tell the user from the token ({exc}): give --user") from None


def _describe(s: dict[str, Any]) -> str:
    where = ", ".join(x for x in (f"webhook {s['webhook_url']}" if s["webhook_url"] else "",
                                  f"e-mail {s['email']}" if s["email"] else "") if x)
    recent = "; ".join(f"{e['event']} {e['status']}" for e in s.get("recent", [])) or "no events yet"
    return (f"{s['subscription_id']}  {', '.join(s['events'])}  dataset {s['dataset_id'] or 'all'}  "
            f"by {where}\n    {recent}")


def run(args: argparse.Namespace) -> int:
    client = client_from_env()
    user = args.user or _token_user()
    verb = args.verb or "list"
    if verb == "add":
        body: dict[str, Any] = {"events": args.events}
        for key, value in (("dataset_id", args.dataset), ("webhook_url", args.webhook),
                           ("webhook_secret", args.secret), ("email", args.email),
                           ("spike_threshold", args.spike), ("stalled_hours", args.stalled_hours)):
            if value is not None:
                body[key] = value
        print("subscribed:\n" + _describe(call(client, "POST", f"/users/{user}/alerts", body)))
        return 0
    if verb == "delete":
        call(client, "DELETE", f"/users/{user}/alerts/{args.subscription_id}")
        print(f"deleted {args.subscription_id}")
        return 0
    subs = call(client, "GET", f"/users/{user}/alerts")["alerts"]
    print("\n".join(_describe(s) for s in subs) if subs else "no alert subscriptions")
    return 0
