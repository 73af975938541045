"""The scratch store's HTTP face: ``PUT/GET/DELETE /scratch/{dataset}/{path}``.

What is stored where, and how an upload is checked before it replaces
anything, is :mod:`server.scratch.files`; this module reads the headers
and streams the body.
"""
from __future__ import annotations

import base64
import binascii

from aiohttp import web

from server.api.errors import bad_request
from server.api.params import json_reply
from server.api.routing import ApiRoutes
from server.keys import SETTINGS, STORE
from server.scratch import files
from server.scratch.files import ScratchPath


class _ScratchRoutes(ApiRoutes):
    """``{path}`` spans several segments: aiohttp needs the ``{path:.+}``
    pattern, while the OpenAPI document must keep the plain parameter name."""

    def register(self, app: web.Application) -> None:
        for spec in self.specs:
            app.router.add_route(spec.method, spec.path.replace("{path}", "{path:.+}"), spec.handler)


routes = _ScratchRoutes("scratch")
PATH = "/scratch/{dataset_id}/{path}"
CHUNK = 1 << 20


async def _where(request: web.Request) -> ScratchPath:
    dataset = await files.dataset_of(request.app[STORE], request.match_info["dataset_id"])
    return files.locate(request.app[SETTINGS], dataset, request.match_info["path"])


def _expected(request: web.Request) -> tuple[int | None, str | None]:
    size_header = request.headers.get("X-Size")
    size = None
    if size_header is not None:
        if not size_header.strip().isdigit():
            raise bad_request(f"header X-Size must be a whole number of bytes, got {size_header!r}")
        size = int(size_header)
    sha512 = request.headers.get("X-Sha512")
    digest = request.headers.get("Digest")
    if sha512 is None and digest:
        for item in digest.split(","):
            name, _, value = item.strip().partition("=")
            if name.lower() == "sha-512":
                try:
                    sha512 = base64.b64decode(value, validate=True).hex()
                except (binascii.Error, ValueError):
                    raise bad_request("header Digest: sha-512 value is not base64") from None
    if sha512 is not None:
        sha512 = sha512.strip().lower()
        if len(sha512) != 128 or any(c not in "0123456789abcdef" for c in sha512):
            raise bad_request("header X-Sha512 must be 128 hex digits")
    return size, sha512


@routes.put(PATH, summary="upload a scratch file (checked against X-Size / X-Sha512 or Digest: sha-512=...)",
            right="write", pilot=True, responses={201: "stored: {size, sha512}", 409: "the path is taken by a folder"})
async def put_file(request: web.Request) -> web.Response:
    where = await _where(request)
    expected_size, expected_sha = _expected(request)
    record = await files.put_file(request.app[STORE], where, request.content.iter_chunked(CHUNK),
                                  content_length=request.content_length, expected_size=expected_size,
                                  expected_sha=expected_sha)
    return json_reply({"size": record.size, "sha512": record.sha512}, status=201)


@routes.get(PATH, summary="download a scratch file (X-Sha512 and Digest headers carry its checksum)", right="read",
            pilot=True)
async def get_file(request: web.Request) -> web.StreamResponse:
    where = await _where(request)
    record = await files.find_file(request.app[STORE], where)
    digest = base64.b64encode(bytes.fromhex(record.sha512)).decode()
    return web.FileResponse(where.target, headers={"X-Sha512": record.sha512, "X-Size": str(record.size),
                                                   "Digest": f"sha-512={digest}",
                                                   "Content-Type": "application/octet-stream"})


@routes.delete(PATH, summary="delete a scratch file", right="write", pilot=True)
async def delete_file(request: web.Request) -> web.Response:
    await files.delete_file(request.app[STORE], await _where(request))
    return json_reply({})
