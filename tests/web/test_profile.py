"""/profile: a user's and their groups' credentials, added and deleted, never a secret shown;
failed refreshes on the admin dashboard."""
from __future__ import annotations

from server.credentials.keys import CIPHER
from server.store import Credential
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
