"""Authentication (bearer tokens) and authorization (roles, dataset rights)."""
from server.auth.identity import ROLES, Identity, identity_from_claims
from server.auth.rights import allowed, default_rights, may, may_read_action, readable_ids
from server.auth.tokens import TokenAuthority, TokenError, load_or_create_key

__all__ = ["ROLES", "Identity", "TokenAuthority", "TokenError", "allowed", "default_rights",
           "identity_from_claims", "load_or_create_key", "may", "may_read_action", "readable_ids"]
