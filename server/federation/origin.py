"""The origin: objects under the storage root, over HTTPS with WebDAV listings.

GET (with a single byte range), HEAD, PUT (written beside the target and
renamed, so a reader never sees half a file), DELETE and PROPFIND (depth 0/1),
which is what pelicanfs and aiowebdav2 send. With an issuer, every request
needs a bearer token whose scopes cover the path.
"""
from __future__ import annotations

import email.utils
import logging
import os
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web

from server.federation.namespaces import BadPath, Namespaces
from server.federation.tokens import TokenChecker, TokenRejected

log = logging.getLogger("frazil.federation.origin")
NAMESPACES: web.AppKey[Namespaces] = web.AppKey("namespaces", Namespaces)
CHECKER: web.AppKey[TokenChecker | None] = web.AppKey("checker", object)  # type: ignore[arg-type]
HIDDEN: web.AppKey[tuple[Path, ...]] = web.AppKey("hidden", tuple)
BLOCK = 1 << 20
WRITE_METHODS = frozenset({"PUT", "DELETE"})


def _http_date(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


async def _resolve(request: web.Request) -> tuple[str, Path]:
    """(namespace path, file path) of the request, after the token check."""
    namespaces = request.app[NAMESPACES]
    try:
        path = namespaces.clean(request.raw_path.split("?", 1)[0])
    except BadPath as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from None
    prefix = namespaces.match(path)
    local = namespaces.local(path)
    if prefix is None or any(local == h or h in local.parents for h in request.app[HIDDEN]):
        raise web.HTTPNotFound(text=f"{path}: not in any namespace of this origin\n")
    checker = request.app[CHECKER]
    if checker is not None:
        try:
            await checker.check(request.headers.get("Authorization"), request.method in WRITE_METHODS,
                                namespaces.relative(prefix, path))
        except TokenRejected as exc:
            log.info("%s %s refused: %s", request.method, path, exc.reason)
            error = web.HTTPUnauthorized if exc.status == 401 else web.HTTPForbidden
            raise error(text=f"{exc.reason}\n") from None
    return path, local


async def get_object(request: web.Request) -> web.StreamResponse:
    path, local = await _resolve(request)
    if not local.is_file():
        if local.is_dir() and request.method == "HEAD":
            return web.Response(status=200)
        raise web.HTTPNotFound(text=f"{path}: no such object\n")
    # FileResponse streams with sendfile and answers Range requests itself.
    return web.FileResponse(local, chunk_size=BLOCK)


async def put_object(request: web.Request) -> web.Response:
    path, local = await _resolve(request)
    if local.is_dir():
        raise web.HTTPConflict(text=f"{path}: is a collection\n")
    try:
        local.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise web.HTTPConflict(text=f"{path}: a parent is an object, not a collection\n") from None
    part = local.parent / f".{local.name}.part-{uuid.uuid4().hex[:12]}"
    existed = local.exists()
    try:
        with open(part, "wb") as out:
            async for block in request.content.iter_chunked(BLOCK):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        expected = request.content_length
        if expected is not None and part.stat().st_size != expected:
            raise web.HTTPBadRequest(text=f"{path}: body shorter than Content-Length\n")
        os.replace(part, local)
    finally:
        part.unlink(missing_ok=True)
    return web.Response(status=204 if existed else 201)


async def delete_object(request: web.Request) -> web.Response:
    path, local = await _resolve(request)
    if local.is_file():
        local.unlink()
        return web.Response(status=204)
    raise web.HTTPNotFound(text=f"{path}: no such object\n")


def _entry(href: str, stat: os.stat_result, is_dir: bool) -> str:
    kind = "<D:resourcetype><D:collection/></D:resourcetype>" if is_dir else "<D:resourcetype/>"
    # Collections report 0 bytes: pelicanfs reads a size for every entry of a listing.
    size = f"<D:getcontentlength>{0 if is_dir else stat.st_size}</D:getcontentlength>"
    mime = "" if is_dir else "<D:getcontenttype>application/octet-stream</D:getcontenttype>"
    return (f"<D:response><D:href>{escape(href)}</D:href><D:propstat><D:prop>{kind}{size}{mime}"
            f"<D:getlastmodified>{_http_date(stat.st_mtime)}</D:getlastmodified>"
            f"</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>")


async def propfind(request: web.Request) -> web.Response:
    path, local = await _resolve(request)
    trailing = request.path.endswith("/") and path != "/"
    if not local.exists() or (trailing and not local.is_dir()):
        raise web.HTTPNotFound(text=f"{path}: no such object or collection\n")
    is_dir = local.is_dir()
    entries = [_entry(path + ("/" if is_dir and path != "/" else ""), local.stat(), is_dir)]
    if is_dir and request.headers.get("Depth", "1") != "0":
        hidden = request.app[HIDDEN]
        for child in sorted(local.iterdir()):
            if (child.name.startswith(".") and ".part-" in child.name) or child in hidden:
                continue  # uploads in progress and the TLS directory are not objects
            child_dir = child.is_dir()
            href = f"{path.rstrip('/')}/{child.name}" + ("/" if child_dir else "")
            entries.append(_entry(href, child.stat(), child_dir))
    body = ('<?xml version="1.0" encoding="utf-8"?><D:multistatus xmlns:D="DAV:">'
            + "".join(entries) + "</D:multistatus>")
    return web.Response(status=207, text=body, content_type="application/xml")


def make_origin_app(namespaces: Namespaces, checker: TokenChecker | None,
                    hidden: tuple[Path, ...] = ()) -> web.Application:
    app = web.Application()
    app[NAMESPACES] = namespaces
    app[CHECKER] = checker
    app[HIDDEN] = hidden
    app.router.add_get("/{tail:.*}", get_object)  # also answers HEAD
    app.router.add_route("PUT", "/{tail:.*}", put_object)
    app.router.add_route("DELETE", "/{tail:.*}", delete_object)
    app.router.add_route("PROPFIND", "/{tail:.*}", propfind)
    return app
