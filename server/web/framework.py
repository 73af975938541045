"""How pages are declared, authenticated, protected and rendered.

Every page handler is declared with :meth:`PageRoutes.page`, which reads the
session cookie, sends anonymous visitors to ``/login``, refuses non-admins on
admin pages, checks the CSRF token of every POST and turns errors into an
HTML page with the right status (the API's error middleware answers JSON,
which a browser should not show). Every HTML answer carries a strict
Content-Security-Policy; templates are rendered with autoescape ON, so user
text cannot become markup.
"""
from __future__ import annotations

import functools
import logging
import pathlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from server.auth import may
from server.errors import status_of
from server.keys import ACTION_WORKER, CONFIG_POOL, SETTINGS, STORE, TOKENS
from server.scheduling.action_worker import queue_action as queue
from server.scheduling.datasets import dataset_by_key
from server.store import ActionMessage, Dataset
from server.web import csrf
from server.web.sessions import COOKIE, Session, SessionCodec, derive_key
from server.web.snapshots import Snapshots

log = logging.getLogger("frazil.web")
HERE = pathlib.Path(__file__).parent
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Frame-Options": "DENY",
                "Referrer-Policy": "same-origin"}
SESSION: web.RequestKey[Session | None] = web.RequestKey("frazil.web.session", Session)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def number(value: float, digits: int) -> str:
    """Rounded, without trailing zeros: the same text the live script writes."""
    rounded = round(float(value), digits)
    return str(int(rounded)) if rounded == int(rounded) else repr(rounded)


RESOURCE_UNITS = (("cpu", "CPU"), ("gpu", "GPU"), ("memory", "GB memory"), ("disk", "GB disk"), ("time", "h"))


def resources_text(resources: object) -> str:
    """``4 CPU · 1 GPU · 8 GB memory · 20 GB disk · 12 h``: a pilot's slot as a person reads it."""
    if not isinstance(resources, dict):
        return ""
    parts = []
    for key, unit in RESOURCE_UNITS:
        value = resources.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (value or key in ("cpu", "memory")):
            parts.append(f"{number(value, 2)} {unit}")
    return " · ".join(parts)


ENV.filters["num"] = number
ENV.filters["resources"] = resources_text


class PageError(Exception):
    """Answer with an error page: ``status`` and a message for the reader."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class WebState:
    """Keys and caches the pages share; made once per app by ``create_app``."""

    codec: SessionCodec
    csrf_key: bytes
    snapshots: Snapshots = field(default_factory=Snapshots)

    @classmethod
    def from_secret(cls, secret: bytes) -> "WebState":
        """Session and CSRF keys derived from the server's signing key."""
        return cls(SessionCodec(derive_key(secret, "session")), derive_key(secret, "csrf"))


WEB: web.AppKey[WebState] = web.AppKey("web", WebState)
"""The website's session codec, CSRF key and snapshot cache."""


def state(app: web.Application) -> WebState:
    return app[WEB]


async def snapshots_ctx(app: web.Application) -> AsyncIterator[None]:
    """Registered after the store's context, so refreshes stop before the store closes."""
    yield
    await state(app).snapshots.close()


def current_session(request: web.Request) -> Session | None:
    if SESSION not in request:
        cookie = request.cookies.get(COOKIE)
        session = state(request.app).codec.decode(cookie) if cookie else None
        if session is not None and request.app[TOKENS].user_revoked(session.username, session.issued):
            session = None  # the user's tokens were revoked (or the user deleted) since this login
        request[SESSION] = session
    return request[SESSION]


def session_of(request: web.Request) -> Session:
    """The signed-in session of a page declared with ``login=True``."""
    session = current_session(request)
    if session is None:
        raise PageError(401, "please sign in")
    return session


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    session = current_session(request)
    token = csrf.session_token(state(request.app).csrf_key, session) if session else ""
    text = ENV.get_template(template).render(session=session, csrf_token=token, path=request.path,
                                             path_qs=request.path_qs,
                                             openid=bool(request.app[SETTINGS].openid_url), **context)
    return web.Response(text=text, status=status, content_type="text/html", headers=PAGE_HEADERS)


def json_page(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store"})


def _error(request: web.Request, status: int, message: str, as_json: bool) -> web.Response:
    if as_json:
        return json_page({"code": status, "error": message}, status)
    return render(request, "error.html", status=status, code=status, message=message)


@dataclass
class PageRoute:
    method: str
    path: str
    handler: Handler


class PageRoutes:
    """Collects page routes; ``register`` is what ``create_app`` calls for a route module."""

    specs: list[Any] = []
    """Pages are not part of the REST API's OpenAPI document."""

    def __init__(self) -> None:
        self.routes: list[PageRoute] = []
        self.on_register: list[Callable[[web.Application], None]] = []

    def page(self, path: str, *, method: str = "GET", login: bool = True, admin: bool = False,
             as_json: bool = False) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            @functools.wraps(handler)
            async def guarded(request: web.Request) -> web.StreamResponse:
                try:
                    session = current_session(request)
                    if login and session is None:
                        if method == "GET" and not as_json:
                            raise web.HTTPSeeOther("/login?" + _next_query(request))
                        return _error(request, 401, "please sign in", as_json)
                    if admin and not (session and session.is_admin):
                        return _error(request, 403, "this page is for administrators", as_json)
                    if method == "POST" and login:
                        form = await request.post()
                        submitted = form.get(csrf.FIELD)
                        if session is None or not csrf.check_session_token(
                                state(request.app).csrf_key, session, submitted if isinstance(submitted, str) else None):
                            return _error(request, 403, "the form expired or did not come from this site; "
                                                        "reload the page and try again", as_json)
                    return await handler(request)
                except web.HTTPException as exc:
                    if exc.status < 400:
                        raise
                    return _error(request, exc.status, exc.reason, as_json)
                except PageError as exc:
                    return _error(request, exc.status, exc.message, as_json)
                except Exception as exc:
                    status = status_of(exc)
                    if status is not None:  # a domain error: the same status as the API gives it
                        return _error(request, status, str(exc), as_json)
                    log.exception("unhandled error on page %s %s", request.method, request.path)
                    return _error(request, 500, "internal server error", as_json)  # a bug, shown without its traceback
            self.routes.append(PageRoute(method, path, guarded))
            return guarded
        return decorate

    def register(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, route.handler)
        for hook in self.on_register:
            hook(app)


def _next_query(request: web.Request) -> str:
    return urlencode({"next": request.path_qs})


def safe_next(value: str | None) -> str:
    """Only local paths: ``next`` must never send a user to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/dataset"


async def dataset_for(request: web.Request, key: str, right: str = "read") -> Dataset:
    """A dataset by id or by number, when the session user has ``right`` on it
    (404 before 403, as the API does)."""
    dataset = await dataset_by_key(request.app[STORE], key)
    if dataset is None:
        raise PageError(404, f"dataset {key} not found")
    await require(request, dataset, right)
    return dataset


async def require(request: web.Request, dataset: Dataset, right: str) -> None:
    if not await may(request.app[STORE], session_of(request).identity, dataset.dataset_id, right):
        raise PageError(403, f"you may not {right} dataset {dataset.dataset}")


async def can_write(request: web.Request, dataset: Dataset) -> bool:
    try:
        await require(request, dataset, "write")
    except PageError:
        return False
    return True


async def queue_action(request: web.Request, name: str, payload: dict[str, Any]) -> ActionMessage:
    """Check a request with the action's own ``prepare`` (the same checks as
    ``POST /actions/{name}``) and queue it; the worker is woken at once."""
    app = request.app
    return await queue(app[STORE], app[SETTINGS], app.get(ACTION_WORKER), session_of(request).identity, name,
                       payload, app.get(CONFIG_POOL))


async def form_data(request: web.Request) -> dict[str, str]:
    """The POSTed form as plain strings (files are refused)."""
    form = await request.post()
    out: dict[str, str] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            raise PageError(400, f"field {key!r} must be text")
        out[key] = value
    return out


def multi(request: web.Request, name: str) -> list[str]:
    """A multi-select query parameter (repeated ``name=a&name=b`` or ``a|b``)."""
    values: list[str] = []
    for raw in request.query.getall(name, []):
        values.extend(v for v in raw.split("|") if v)
    return values
