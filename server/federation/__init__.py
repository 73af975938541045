"""A one-machine Pelican federation: director and origin on 127.0.0.1 (``frazil federation``).

It speaks the protocol the real ``pelicanfs`` client uses (see docs/operators.md):
``/.well-known/pelican-configuration`` and the director on one port, the origin
(GET/HEAD/PUT/PROPFIND/DELETE over HTTPS) on another, bearer tokens checked
with the ``scitokens`` library when an issuer is configured.
"""
