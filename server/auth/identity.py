"""Who is calling: tokens' claims turned into a username, a role and groups.

Local tokens (``frazil token create``) carry ``role`` and ``groups`` claims
directly. OpenID Connect tokens (e.g. Keycloak) are mapped with IceProd's
rules (reference §4.2): regular expressions over claim values, so an
IceProd deployment's tokens give the same roles and groups in frazil.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

ROLES = ("admin", "user", "system", "pilot")
SYSTEM_USERNAME = "frazil-system"
PILOT_REGISTER_SCOPE = "register"
"""The ``scope`` claim of a bootstrap pilot token: it may only register."""
PILOT_USERNAME = "frazil-pilot"


@dataclass(frozen=True)
class Identity:
    username: str
    role: str
    groups: frozenset[str] = field(default_factory=frozenset)
    pilot_id: str | None = None
    """Pilot tokens from a registration: the one pilot they act for (its ``pilot_id`` claim)."""
    register_only: bool = False
    """Bootstrap pilot tokens (``scope: register``, minted by providers and
    ``frazil token create --role pilot``): they may only register."""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_pilot(self) -> bool:
        """Pilot tokens reach the pilot routes only (DESIGN.md §3.9)."""
        return self.role == "pilot"

    @property
    def acts_for_anyone(self) -> bool:
        """IceProd's ``admin`` and ``system`` roles bypass dataset rights and may
        act for other users (its ``attr_auth``); ``system`` is what IceProd's own
        services and cron tasks carry."""
        return self.role in ("admin", "system")


@dataclass(frozen=True)
class ClaimRule:
    """``claim`` (dot path into the token) must fully match ``pattern`` for some value."""

    claim: str
    pattern: str

    def matches(self, claims: dict[str, Any]) -> bool:
        value: Any = claims
        for part in self.claim.split("."):
            if not isinstance(value, dict) or part not in value:
                return False
            value = value[part]
        values = value if isinstance(value, list) else [value]
        return any(isinstance(v, str) and re.fullmatch(self.pattern, v) for v in values)


# IceProd's roles_groups.py, so an IceProd Keycloak realm works unchanged.
OIDC_ROLE_RULES: dict[str, tuple[ClaimRule, ...]] = {
    "admin": (ClaimRule("groups", "/tokens/IceProdAdmins"),),
    "system": (ClaimRule("resource_access.iceprod.roles", "iceprod-system"),
               ClaimRule("resource_access.frazil.roles", "frazil-system")),
    "user": (ClaimRule("groups", "/institutions/IceCube.*"),),
    # frazil's own, narrowest last: IceProd has no pilot role (its pilots carried system tokens)
    "pilot": (ClaimRule("resource_access.frazil.roles", "frazil-pilot"),),
}
OIDC_GROUP_RULES: dict[str, tuple[ClaimRule, ...]] = {
    "admin": (ClaimRule("groups", "/tokens/IceProdAdmins"),),
    "simprod": (ClaimRule("groups", "/posix/simprod-submit"),),
    "filtering": (ClaimRule("groups", "/posix/i3filter"),),
    "users": (ClaimRule("groups", "/institutions/IceCube.*"),),
}
DEFAULT_GROUP_PRIORITIES = {"admin": 1.0, "simprod": 0.5, "filtering": 0.9, "users": 0.8}


class IdentityError(ValueError):
    """The token is valid but says nothing frazil can use (no role)."""


def _first_match(claims: dict[str, Any], rules: dict[str, tuple[ClaimRule, ...]]) -> Iterable[str]:
    for name, alternatives in rules.items():
        if any(rule.matches(claims) for rule in alternatives):
            yield name


SERVICE_USERNAMES = {"system": SYSTEM_USERNAME, "pilot": PILOT_USERNAME}
"""The fixed names of service tokens that name no one (IceProd: ``iceprod-system``)."""


def identity_from_claims(claims: dict[str, Any]) -> Identity:
    """Local tokens first (explicit ``role``), then IceProd's OIDC mapping."""
    role = claims.get("role")
    if isinstance(role, str):
        if role not in ROLES:
            raise IdentityError(f"token role {role!r} is not one of {', '.join(ROLES)}")
        groups = claims.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise IdentityError("token 'groups' claim must be a list of names")
        username = SERVICE_USERNAMES[role] if role in SERVICE_USERNAMES and not claims.get("sub") \
            else str(claims.get("sub"))
        if role != "pilot":
            return Identity(username=username, role=role, groups=frozenset(groups))
        pilot_id, scope = claims.get("pilot_id"), claims.get("scope")
        if pilot_id is not None and (not isinstance(pilot_id, str) or not pilot_id):
            raise IdentityError("token 'pilot_id' claim must be a pilot id")
        if scope is not None and scope != PILOT_REGISTER_SCOPE:
            raise IdentityError(f"pilot token 'scope' claim must be {PILOT_REGISTER_SCOPE!r}")
        return Identity(username=username, role=role, groups=frozenset(groups), pilot_id=pilot_id,
                        register_only=scope == PILOT_REGISTER_SCOPE)
    roles = list(_first_match(claims, OIDC_ROLE_RULES))
    if not roles:
        raise IdentityError("token grants no frazil role (admin, user, system or pilot)")
    # the widest role a token's claims grant wins (rules are listed widest first)
    role = roles[0]
    username = SERVICE_USERNAMES.get(role) or str(claims.get("preferred_username") or claims.get("sub") or "")
    if not username:
        raise IdentityError("token has no username (preferred_username or sub)")
    return Identity(username=username, role=role, groups=frozenset(_first_match(claims, OIDC_GROUP_RULES)))
