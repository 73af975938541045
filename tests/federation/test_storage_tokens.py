"""The claim path's storage token: which credential, narrowed by exchange, else the stored token."""
from __future__ import annotations

import json

import jwt
from cryptography.fernet import Fernet

from server.credentials.cipher import SecretCipher
from server.credentials.tokens import StorageTokens
from server.store import Credential, open_store

CONFIG = {"tasks": [{"name": "gen", "token_scopes": {"osdf:///icecube/wipac": "storage.modify:/data/sim/1"}},
                    {"name": "plain", "token_scopes": {}}]}


async def _store(tmp_path, cipher, access, owner_kind="user", owner="alice", url="osdf:///icecube/wipac"):
    store = await open_store(f"sqlite:///{tmp_path}/s.db")
    await store.put_credential(Credential(owner_kind=owner_kind, owner=owner, url=url, type="oauth",
                                          secret=cipher.seal({"access_token": access})))
    return store


async def test_exchanged_per_scope_and_cached(tmp_path, issuer):
    cipher = SecretCipher(Fernet.generate_key())
    access = issuer.mint("storage.read:/data storage.modify:/data/sim", lifetime=3600)
    store = await _store(tmp_path, cipher, access)
    tokens = StorageTokens(cipher, "/icecube/wipac", {})
    text = json.dumps(CONFIG)
    try:
        got = await tokens.for_task(store, dataset_id="d", version=1, config_text=text, task_name="gen",
                                    owner=("alice", "users"),
                                    files=[{"remote": "osdf:///icecube/wipac/data/exp/in.i3", "movement": "input"}])
        claims = jwt.decode(got, options={"verify_signature": False})
        assert claims["scope"] == "storage.modify:/data/sim/1 storage.read:/data/exp"
        again = await tokens.for_task(store, dataset_id="d", version=1, config_text=text, task_name="gen",
                                      owner=("alice", "users"),
                                      files=[{"remote": "osdf:///icecube/wipac/data/exp/in.i3"}])
        assert again == got and issuer.exchanges == 1  # cached
        assert await tokens.for_task(store, dataset_id="d", version=1, config_text=text, task_name="plain",
                                     owner=("alice", "users")) is None
        assert await tokens.for_task(store, dataset_id="d", version=1, config_text=text, task_name="gen",
                                     owner=("bob", "others")) is None  # no credential of theirs
        used = await store.get_credential("user", "alice", "osdf:///icecube/wipac")
        assert used.last_use is not None
    finally:
        await store.close()


async def test_stored_token_when_the_issuer_cannot_narrow(tmp_path, issuer):
    cipher = SecretCipher(Fernet.generate_key())
    access = issuer.mint("storage.read:/elsewhere", lifetime=3600)  # exchange for /data/sim/1 is refused
    store = await _store(tmp_path, cipher, access, owner_kind="group", owner="simprod")
    tokens = StorageTokens(cipher, "/icecube/wipac", {})
    try:
        got = await tokens.for_task(store, dataset_id="d", version=1, config_text=json.dumps(CONFIG),
                                    task_name="gen", owner=("alice", "simprod"))
        assert got == access and issuer.exchanges == 0
    finally:
        await store.close()
