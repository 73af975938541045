"""/profile: a user's and their groups' credentials, added and deleted, never a secret shown;
failed refreshes on the admin dashboard."""
from __future__ import annotations

from server.credentials.keys import CIPHER
from server.store import Credential
from tests.federation.conftest import issuer  # noqa: F401 (a fixture: the test token issuer)
from tests.web.conftest import WebServer, csrf_of, sign_in

SECRET = "pasted-access-token-0123456789"
S3_SECRET = "s3-secret-key-abcdef"


async def test_profile_lists_adds_and_deletes_without_secrets(web_server: WebServer) -> None:
    client = await sign_in(web_server, "alice", groups=("users", "simprod"))
    pages = []
    async with client:
        token = await csrf_of(client, f"{web_server.url}/profile")
        url = f"{web_server.url}/profile/credentials"
        async with client.post(url, data={"csrf_token": token, "owner": "user", "url": "osdf:///icecube/wipac",
                                          "type": "oauth", "access_token": SECRET}) as reply:
            assert reply.status == 200 and "credential saved" in (page := await reply.text())
            pages.append(page)
        async with client.post(url, data={"csrf_token": token, "owner": "group:simprod", "url": "https://s3.example",
                                          "type": "s3", "access_key": "AK", "secret_key": S3_SECRET,
                                          "buckets": "a, b"}) as reply:
            assert reply.status == 200
            pages.append(await reply.text())
        async with client.post(url, data={"csrf_token": token, "owner": "group:admins", "url": "x", "type": "s3",
                                          "access_key": "a", "secret_key": "b"}) as reply:
            assert reply.status == 403  # not her group
        async with client.post(url, data={"csrf_token": token, "owner": "user", "url": "osdf:///x",
                                          "type": "oauth"}) as reply:
            assert reply.status == 400 and "access_token is required" in await reply.text()
        async with client.post(url, data={"owner": "user", "url": "osdf:///x", "type": "oauth",
                                          "access_token": "t"}) as reply:
            assert reply.status == 403  # no CSRF token
        async with client.get(f"{web_server.url}/profile") as reply:
            page = await reply.text()
            pages.append(page)
        assert "<code>osdf:///icecube/wipac</code>" in page and "group simprod" in page and "a, b" in page
        async with client.post(f"{web_server.url}/profile/credentials/delete",
                               data={"csrf_token": token, "owner": "user", "url": "osdf:///icecube/wipac"}) as reply:
            assert reply.status == 200 and "credential deleted" in (page := await reply.text())
        assert "<code>osdf:///icecube/wipac</code>" not in page
    assert all(SECRET not in p and S3_SECRET not in p for p in pages)
    stored = await web_server.store.get_credential("group", "simprod", "https://s3.example")
    assert web_server.app[CIPHER].open(stored.secret)["secret_key"] == S3_SECRET


async def test_failed_refresh_shows_on_profile_and_admin(web_server: WebServer) -> None:
    cipher = web_server.app[CIPHER]
    failed = Credential(owner_kind="user", owner="alice", url="osdf:///icecube/wipac", type="oauth",
                        secret=cipher.seal({"access_token": SECRET, "refresh_token": "r"}), expiration=1.0,
                        refreshable=True, refresh_error="refresh failed: the token endpoint answered HTTP 400")
    await web_server.store.put_credential(failed)
    client = await sign_in(web_server, "alice")
    admin = await sign_in(web_server, "root", role="admin", groups=("admin",))
    async with client, admin:
        async with client.get(f"{web_server.url}/profile") as reply:
            page = await reply.text()
        async with admin.get(f"{web_server.url}/admin") as reply:
            dashboard = await reply.text()
    # (the running refresh loop may have tried again meanwhile: either reason is shown)
    assert "refresh failed: " in page and SECRET not in page
    assert 'id="credential-refresh"' in dashboard and "user alice" in dashboard and SECRET not in dashboard


async def test_device_code_flow_adds_a_credential(web_server: WebServer, issuer) -> None:
    client = await sign_in(web_server, "alice", groups=("users",))
    async with client:
        token = await csrf_of(client, f"{web_server.url}/profile")
        async with client.post(f"{web_server.url}/profile/device", data={
                "csrf_token": token, "owner": "user", "url": "osdf:///icecube/wipac", "issuer": issuer.url,
                "scope": "storage.read:/data"}) as reply:
            page = await reply.text()
            assert reply.status == 200 and 'id="user-code"' in page, page
            flow_url = str(reply.url)
        user_code = page.split('id="user-code">')[1].split("<")[0]
        async with client.post(flow_url, data={"csrf_token": token}) as reply:
            assert "not approved yet" in await reply.text()
        assert issuer.approve(user_code, subject="alice")
        async with client.post(flow_url, data={"csrf_token": token}) as reply:
            page = await reply.text()
            assert "credential saved" in page and "<code>osdf:///icecube/wipac</code>" in page
        async with client.post(flow_url, data={"csrf_token": token}) as reply:
            assert reply.status == 400  # the flow is over
        async with client.get(flow_url) as reply:
            assert reply.status == 404
        async with client.post(f"{web_server.url}/profile/device", data={
                "csrf_token": token, "owner": "user", "url": "osdf:///x", "issuer": "http://127.0.0.1:9"}) as reply:
            assert reply.status == 400 and "cannot reach the issuer" in await reply.text()
    stored = await web_server.store.get_credential("user", "alice", "osdf:///icecube/wipac")
    assert stored.refreshable and stored.scope == "storage.read:/data"
    assert "access_token" in web_server.app[CIPHER].open(stored.secret)


async def test_other_users_cannot_use_a_device_flow(web_server: WebServer, issuer) -> None:
    alice = await sign_in(web_server, "alice")
    bob = await sign_in(web_server, "bob")
    async with alice, bob:
        token = await csrf_of(alice, f"{web_server.url}/profile")
        async with alice.post(f"{web_server.url}/profile/device", data={
                "csrf_token": token, "owner": "user", "url": "osdf:///y", "issuer": issuer.url}) as reply:
            flow_url = str(reply.url)
        async with bob.get(flow_url) as reply:
            assert reply.status == 404
