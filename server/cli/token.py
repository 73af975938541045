"""``frazil token create USER [--role R] [--groups g1,g2]`` (or ``--user USER``): mint a token
signed with this installation's local key; prints the token alone on stdout.

``frazil token revoke USER`` (or ``--token-id ID`` / ``--token TOKEN``): record a revocation in
the installation's store; every server replica on that store refuses the tokens within a second."""
from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json

from common.cli_errors import CliError
from server.auth import ROLES, TokenAuthority, load_or_create_key
from server.auth.revocation import REFRESH_SECONDS, revoke, token_subject, user_subject
from server.settings import Settings, load_settings
from server.store import StoreError, open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_command", metavar="ACTION")
    sub.required = True
    create = sub.add_parser("create", help="mint a token signed with the local key")
    create.add_argument("user_name", nargs="?", metavar="USER", help="user name the token is for (or --user)")
    create.add_argument("--user", help="user name the token is for (the same as USER)")
    create.add_argument("--role", default="user", choices=ROLES, help="admin, user, system (IceProd's services and scripts) or pilot (pilot routes only)")
    create.add_argument("--groups", default="users", help="comma-separated groups (default: users)")
    create.add_argument("--expires-days", type=float, default=365.0, help="validity in days (default 365)")
    create.add_argument("--config", help="server settings file (to find the signing key)")
    revoke_cmd = sub.add_parser("revoke", help="revoke a user's tokens (or one token) on every server replica")
    revoke_cmd.add_argument("user_name", nargs="?", metavar="USER", help="revoke every token of USER issued until now")
    revoke_cmd.add_argument("--token-id", help="revoke only the token with this id (its 'jti' claim)")
    revoke_cmd.add_argument("--token", help="revoke only this token (its id is read from it)")
    revoke_cmd.add_argument("--config", help="server settings file (to find the store)")


def run(args: argparse.Namespace) -> int:
    if args.token_command == "revoke":
        return _revoke(args)
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
        authority = TokenAuthority(key, issuer=settings.token_issuer)
        expiration = int(args.expires_days * 86400)
        # a hand-started pilot registers with it and then works with the bound,
        # short-lived token the registration answers (docs/operators.md)
        token = (authority.create_bootstrap(expiration, username=user) if args.role == "pilot" else
                 authority.create(user, role=args.role, groups=groups, expiration=expiration))
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(token)
    return 0


def token_id_of(token: str) -> str:
    """The ``jti`` claim of a token (read, not verified: naming a token to refuse needs no trust)."""
    try:
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=" * (-len(token.split(".")[1]) % 4)))
        token_id = claims["jti"]
    except (IndexError, binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        raise CliError("--token is not a token with an id (a 'jti' claim); revoke its user instead") from None
    if not isinstance(token_id, str) or not token_id:
        raise CliError("--token has no usable id; revoke its user instead")
    return token_id


def _revoke(args: argparse.Namespace) -> int:
    chosen = [x for x in (args.user_name, args.token_id, args.token) if x]
    if len(chosen) != 1:
        raise CliError("name exactly one of: USER, --token-id ID, --token TOKEN", exit_code=2)
    if args.user_name:
        subject = user_subject(args.user_name)
    else:
        subject = token_subject(args.token_id or token_id_of(args.token))
    settings = load_settings(args.config)
    try:
        asyncio.run(_record(settings, subject))
    except (OSError, StoreError) as exc:
        raise CliError(f"cannot record the revocation in {settings.db}: {exc}") from None
    print(f"revoked {subject}: servers on this store refuse it within {REFRESH_SECONDS:g} s")
    return 0


async def _record(settings: Settings, subject: str) -> None:
    store = await open_store(settings.db, durable=settings.durable_commits)
    try:
        await revoke(store, None, subject)
    finally:
        await store.close()
