"""IceProd's credentials routes: bodies, rights, encryption at rest, refresh; secrets never shown."""
from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import aiohttp
import pytest

from server.credentials.keys import CIPHER
from server.credentials.loop import refresh_round
from server.credentials.service import CredentialService
from server.store import Credential, open_store
from tests.federation.conftest import issuer  # noqa: F401 (a fixture: the test token issuer)
from tests.server.conftest import start_server

URL = "osdf:///icecube/wipac"


class Api:
    """Raw HTTP, so every reply text can be searched for secrets."""

    def __init__(self, server, session: aiohttp.ClientSession) -> None:
        self.server, self.session, self.texts = server, session, []

    async def call(self, method: str, path: str, token: str, body=None) -> tuple[int, object]:
        async with self.session.request(method, self.server.url + path, json=body,
                                        headers={"Authorization": f"Bearer {token}"}) as resp:
            text = await resp.text()
            self.texts.append(text)
            return resp.status, (await resp.json(content_type=None) if text else None)


@pytest.fixture
async def api(server):
    async with aiohttp.ClientSession() as session:
        yield Api(server, session)


def _secret_free(api: Api, server, secrets: list[str]) -> None:
    data = Path(server.settings.data_dir)
    db = Path(server.settings.db.removeprefix("sqlite:///"))
    blobs = [p.read_bytes() for p in [db, *db.parent.glob(db.name + "-wal")] if p.exists()]
    for secret in secrets:
        assert all(secret not in text for text in api.texts), "a secret came back in a reply"
        assert all(secret.encode() not in blob for blob in blobs), "a secret is stored in clear"
    assert (data / "credentials.key").stat().st_mode & 0o077 == 0


async def test_user_credentials_roundtrip_without_secrets(server, api, issuer, caplog):
    alice = server.token("alice", groups=["users", "simprod"])
    access = issuer.mint("storage.read:/data storage.modify:/data/sim", subject="alice")
    refresh = issuer.refresh_token("storage.read:/data storage.modify:/data/sim", subject="alice")
    status, doc = await api.call("POST", "/users/alice/credentials", alice,
                                 {"url": URL, "type": "oauth", "access_token": access, "refresh_token": refresh})
    assert status == 201, doc
    assert doc["scope"] == "storage.read:/data storage.modify:/data/sim" and doc["refreshable"] is True
    assert doc["expiration"] > time.time() and doc["state"] == "valid" and doc["transfer_prefix"] == URL
    status, listed = await api.call("GET", "/users/alice/credentials", alice)
    assert status == 200 and [c["url"] for c in listed] == [URL]
    for query, count in (("?scope=storage.read:/data", 1), ("?scope=storage.read:/other", 0),
                         (f"?transfer_prefix={URL}", 1), ("?url=osdf:///nope", 0)):
        assert len((await api.call("GET", f"/users/alice/credentials{query}", alice))[1]) == count
    assert not {"access_token", "refresh_token", "secret_key", "access_key"} & set(listed[0])
    # S3 on a group of hers; PATCH; DELETE by url
    status, _ = await api.call("POST", "/groups/simprod/credentials", alice,
                               {"url": "https://s3.example", "type": "s3", "buckets": ["sim"],
                                "access_key": "AKIA-test-key", "secret_key": "s3-secret-value-xyz"})
    assert status == 201
    status, doc = await api.call("PATCH", "/groups/simprod/credentials", alice,
                                 {"url": "https://s3.example", "buckets": ["sim", "exp"]})
    assert status == 200 and doc["buckets"] == ["sim", "exp"]
    stored = await server.store.get_credential("group", "simprod", "https://s3.example")
    assert server.app[CIPHER].open(stored.secret)["secret_key"] == "s3-secret-value-xyz"  # kept by PATCH
    status, _ = await api.call("PATCH", "/groups/simprod/credentials", alice, {"url": "https://nope"})
    assert status == 404
    status, doc = await api.call("DELETE", "/groups/simprod/credentials?url=https://s3.example", alice)
    assert status == 200 and doc == {"deleted": 1}
    _secret_free(api, server, [access, refresh, "AKIA-test-key", "s3-secret-value-xyz"])
    assert all(s not in caplog.text for s in (access, refresh, "s3-secret-value-xyz"))


async def test_rights_follow_iceprod(server, api):
    alice, bob = server.token("alice", groups=["users"]), server.token("bob", groups=["users"])
    admin = server.token("root", role="admin")
    pilot = server.token("pilot", role="pilot")
    body = {"url": "https://s3.example", "type": "s3", "access_key": "k", "secret_key": "s"}
    assert (await api.call("POST", "/users/alice/credentials", alice, body))[0] == 201
    assert (await api.call("GET", "/users/alice/credentials", bob))[0] == 403
    assert (await api.call("POST", "/groups/admins/credentials", alice, body))[0] == 403
    assert (await api.call("GET", "/users/alice/credentials", admin))[0] == 200
    assert (await api.call("GET", "/users/alice/credentials", pilot))[0] == 403
    system = server.token("cron", role="system")  # IceProd's services: everyone's credentials
    assert (await api.call("GET", "/users/alice/credentials", system))[0] == 200
    assert (await api.call("GET", "/datasets/d1/credentials", system))[0] == 200
    assert (await api.call("POST", "/datasets/d1/credentials", alice, body))[0] == 403
    assert (await api.call("POST", "/datasets/d1/credentials", admin, body))[0] == 201
    assert (await api.call("POST", "/datasets/d1/tasks/generate/credentials", admin, body))[0] == 201
    status, listed = await api.call("GET", "/datasets/d1/tasks/generate/credentials", admin)
    assert status == 200 and listed[0]["owner"] == "d1/generate"


@pytest.mark.parametrize(("body", "message"), [
    ({"type": "oauth", "access_token": "x"}, "url is required"),
    ({"url": URL, "type": "password"}, "type must be oauth or s3"),
    ({"url": URL, "type": "oauth", "access_token": 12345678901}, "access_token must be a string"),
    ({"url": URL, "type": "oauth"}, "access_token is required"),
    ({"url": URL, "type": "s3", "access_key": "only-half"}, "access_key and secret_key are required"),
    ({"url": URL, "type": "s3", "access_key": "a", "secret_key": "b", "buckets": "one"}, "buckets must be a list"),
    ({"url": URL, "type": "oauth", "access_token": "t", "expiration": "soon"}, "expiration must be"),
    ({"url": URL, "type": "oauth", "access_token": "t", "password": "hunter2"}, "unknown field 'password'"),
    (["not", "an", "object"], "must be a JSON object"),
])
async def test_bad_bodies_name_the_field_never_the_value(server, api, body, message):
    status, doc = await api.call("POST", "/users/alice/credentials", server.token("alice"), body)
    assert status == 400 and message in doc["error"]
    assert "12345678901" not in doc["error"] and "hunter2" not in doc["error"]


async def test_refresh_loop_refreshes_expiring_and_records_failures(server, api, issuer):
    alice = server.token("alice")
    expired = issuer.mint("storage.read:/data", subject="alice", lifetime=-60)
    refresh = issuer.refresh_token("storage.read:/data", subject="alice")
    await api.call("POST", "/users/alice/credentials", alice,
                   {"url": URL, "type": "oauth", "access_token": expired, "refresh_token": refresh})
    broken = issuer.mint("storage.read:/x", subject="alice", lifetime=-60)
    await api.call("POST", "/users/alice/credentials", alice,
                   {"url": "osdf:///other", "type": "oauth", "access_token": broken,
                    "refresh_token": "not-a-refresh-token-the-issuer-knows"})
    status, listed = await api.call("GET", "/users/alice/credentials?norefresh=true", alice)
    assert {c["state"] for c in listed} == {"expired"}
    credentials = CredentialService(server.store, server.app[CIPHER], {})
    more = await refresh_round(credentials, buffer_seconds=900, window_seconds=168 * 3600)
    assert not more and issuer.refreshes == 1
    status, listed = await api.call("GET", "/users/alice/credentials", alice)
    by_url = {c["url"]: c for c in listed}
    assert by_url[URL]["state"] == "valid" and by_url[URL]["expiration"] > time.time()
    assert by_url[URL]["last_refresh"] and not by_url[URL]["refresh_error"]
    assert by_url["osdf:///other"]["state"] == "refresh failed"
    assert "invalid_grant" in by_url["osdf:///other"]["refresh_error"]
    stored = await server.store.get_credential("user", "alice", URL)
    new_access = server.app[CIPHER].open(stored.secret)["access_token"]
    assert new_access != expired
    _secret_free(api, server, [expired, refresh, broken, new_access])


async def test_the_server_refreshes_under_its_loop_lease(server_settings, issuer):
    """With the loops on, the server's own credentials_refresh loop refreshes an expiring
    credential, holding the store lease loop.credentials_refresh while it does."""
    settings = dataclasses.replace(server_settings, loops=True, token_check_interval_seconds=0.2)
    store = await open_store(settings.db)
    runner, running = await start_server(settings, store)
    try:
        cipher = running.app[CIPHER]
        refresh = issuer.refresh_token("storage.read:/data")
        await store.put_credential(Credential(
            owner_kind="user", owner="alice", url=URL, type="oauth", refreshable=True, expiration=1.0,
            secret=cipher.seal({"access_token": issuer.mint("storage.read:/data", lifetime=-5),
                                "refresh_token": refresh})))
        for _ in range(100):
            if issuer.refreshes:
                break
            await asyncio.sleep(0.1)
        assert issuer.refreshes == 1
        # another holder cannot take the lease while this server holds it
        assert not await store.acquire_lease("loop.credentials_refresh", "other-replica:1", 30)
        for _ in range(50):
            fresh = await store.get_credential("user", "alice", URL)
            if fresh.expiration and fresh.expiration > time.time():
                break
            await asyncio.sleep(0.1)
        assert fresh.expiration > time.time() and not fresh.refresh_error
    finally:
        await runner.cleanup()
        await store.close()


async def test_listing_refreshes_what_is_about_to_expire(server, api, issuer):
    alice = server.token("alice")
    expired = issuer.mint("storage.read:/data", subject="alice", lifetime=-60)
    await api.call("POST", "/users/alice/credentials", alice,
                   {"url": URL, "type": "oauth", "access_token": expired,
                    "refresh_token": issuer.refresh_token("storage.read:/data", subject="alice")})
    status, listed = await api.call("GET", "/users/alice/credentials", alice)
    assert status == 200 and listed[0]["state"] == "valid" and issuer.refreshes == 1
