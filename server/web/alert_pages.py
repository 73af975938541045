"""``/profile/alerts``: a user's alert subscriptions (the website side of
``/users/{user}/alerts``): list them with their latest events, add one,
delete one. Same service and checks as the API."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from server.errors import Refused
from server.keys import STORE
from server.scheduling.alerts import subscribe
from server.store import InvalidArgumentError, NotFoundError
from server.store.records import ALERT_EVENTS
from server.web.framework import PageError, PageRoutes, form_data, render, session_of

routes = PageRoutes()


def _number(form: dict[str, str], name: str, kind: type) -> Any:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise PageError(400, f"{name.replace('_', ' ')} must be a number, got {raw[:40]!r}") from None
    if not 0 < value <= 1_000_000:
        raise PageError(400, f"{name.replace('_', ' ')} must be above 0")
    return value


@routes.page("/profile/alerts")
async def alerts(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]
    subs = await store.list_alert_subscriptions(session_of(request).username)
    rows = [(s, await store.list_alert_events(s.subscription_id, 5)) for s in subs]
    events = [e for e in ALERT_EVENTS if e != "quarantine" or session_of(request).is_admin]
    return render(request, "alerts.html", subscriptions=rows, events=events,
                  message=request.query.get("message", ""))


@routes.page("/profile/alerts", method="POST")
async def add_alert(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    post = await request.post()
    events = [e for e in post.getall("events", []) if isinstance(e, str)]
    if not events or any(e not in ALERT_EVENTS for e in events):
        raise PageError(400, f"choose at least one event of {', '.join(ALERT_EVENTS)}")
    body: dict[str, Any] = {"events": events}
    for key in ("dataset_id", "webhook_url", "webhook_secret", "email"):
        if form.get(key, "").strip():
            body[key] = form[key].strip()
    if body.get("webhook_url") and not body["webhook_url"].startswith(("http://", "https://")):
        raise PageError(400, "the webhook URL must start with http:// or https://")
    if body.get("webhook_secret") is not None and len(body["webhook_secret"]) < 16:
        raise PageError(400, "the webhook secret must have at least 16 characters")
    if body.get("email") and "@" not in body["email"]:
        raise PageError(400, "the e-mail address needs an @")
    for key, kind in (("spike_threshold", int), ("stalled_hours", float)):
        value = _number(form, key, kind)
        if value is not None:
            body[key] = value
    session = session_of(request)
    try:
        await subscribe(request.app[STORE], session.identity, session.username, body)
    except InvalidArgumentError as exc:
        raise PageError(400, str(exc)) from None
    except NotFoundError as exc:
        raise PageError(404, str(exc)) from None
    except Refused as exc:
        raise PageError(exc.status, str(exc)) from None
    raise web.HTTPSeeOther("/profile/alerts?message=subscribed")


@routes.page("/profile/alerts/{subscription_id}/delete", method="POST")
async def delete_alert(request: web.Request) -> web.StreamResponse:
    if not await request.app[STORE].delete_alert_subscription(request.match_info["subscription_id"],
                                                              session_of(request).username):
        raise PageError(404, "no such alert subscription")
    raise web.HTTPSeeOther("/profile/alerts?message=unsubscribed")
