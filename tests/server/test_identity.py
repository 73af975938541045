"""Tokens' claims → role: IceProd's OIDC rules, frazil's pilot rule, local tokens."""
from __future__ import annotations

import pytest

from server.auth.identity import IdentityError, identity_from_claims


def test_oidc_claims_map_as_iceprod_with_a_pilot_rule() -> None:
    system = identity_from_claims({"sub": "svc", "resource_access": {"iceprod": {"roles": ["iceprod-system"]}}})
    assert (system.role, system.username, system.is_pilot, system.acts_for_anyone) == \
        ("system", "frazil-system", False, True)
    pilot = identity_from_claims({"sub": "glidein", "resource_access": {"frazil": {"roles": ["frazil-pilot"]}}})
    assert (pilot.role, pilot.username, pilot.is_pilot, pilot.acts_for_anyone) == \
        ("pilot", "frazil-pilot", True, False)
    # the widest role a token grants wins: a physicist who also holds the pilot role is a user
    both = identity_from_claims({"preferred_username": "ann", "groups": ["/institutions/IceCube/UW"],
                                 "resource_access": {"frazil": {"roles": ["frazil-pilot"]}}})
    assert (both.role, both.username, both.groups) == ("user", "ann", frozenset({"users"}))
    with pytest.raises(IdentityError, match="admin, user, system or pilot"):
        identity_from_claims({"sub": "x", "resource_access": {"frazil": {"roles": ["frazil-other"]}}})


def test_local_tokens_name_their_role() -> None:
    assert identity_from_claims({"role": "pilot", "groups": []}).username == "frazil-pilot"
    assert identity_from_claims({"role": "pilot", "sub": "pilot-1"}).username == "pilot-1"
    assert identity_from_claims({"role": "system"}).username == "frazil-system"
    with pytest.raises(IdentityError, match="not one of admin, user, system, pilot"):
        identity_from_claims({"role": "root"})
