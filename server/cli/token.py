"""``frazil token create USER [--role R] [--groups g1,g2]`` (or ``--user USER``): mint a token
signed with this installation's local key; prints the token alone on stdout."""
from __future__ import annotations

import argparse

from common.cli_errors import CliError
from server.auth import ROLES, TokenAuthority, load_or_create_key
from server.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_command", metavar="ACTION")
    sub.required = True
    create = sub.add_parser("create", help="mint a token signed with the local key")
    create.add_argument("user_name", nargs="?", metavar="USER", help="user name the token is for (or --user)")
    create.add_argument("--user", help="user name the token is for (the same as USER)")
    create.add_argument("--role", default="user", choices=ROLES, help="admin, user or system (pilots)")
    create.add_argument("--groups", default="users", help="comma-separated groups (default: users)")
    create.add_argument("--expires-days", type=float, default=365.0, help="validity in days (default 365)")
    create.add_argument("--config", help="server settings file (to find the signing key)")


def run(args: argparse.Namespace) -> int:
    if args.user and args.user_name and args.user != args.user_name:
        raise CliError(f"two user names: {args.user_name!r} and --user {args.user!r}", exit_code=2)
    user = args.user or args.user_name
    if not user:
        raise CliError("name the user: frazil token create USER (or --user USER)", exit_code=2)
    settings = load_settings(args.config)
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    if args.expires_days <= 0:
        raise CliError("--expires-days must be > 0")
    try:
        key = load_or_create_key(settings.path(settings.auth_key_file, "auth.key"))
        token = TokenAuthority(key, issuer=settings.token_issuer).create(
            user, role=args.role, groups=groups, expiration=int(args.expires_days * 86400))
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(token)
    return 0
