"""The server's scratch store over authenticated HTTP (``job_temp`` without a remote).

The pilot's token is attached only to URLs under the server it talks to:
registering a token-carrying handler for every ``http(s)://`` URL would hand
the pilot's credentials to any web server a config names.
Uploads announce ``X-Size`` and ``X-Sha512`` so the server itself refuses a
corrupt upload before it replaces anything.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pycurl

from common.transfer import HttpFiles, register_scheme, sha512_file


@dataclass
class ServerAuthHttp(HttpFiles):
    """HttpFiles that sends ``Authorization: Bearer`` to URLs starting with ``prefix``."""

    prefix: str = ""
    token: str = ""

    def _scoped_headers(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(self.headers)
        if self.prefix and self.token and url.startswith(self.prefix):
            headers["Authorization"] = f"Bearer {self.token}"
            headers.update(extra or {})
        return headers

    def _handle(self, url: str) -> pycurl.Curl:
        curl = super()._handle(url)
        headers = self._scoped_headers(url)
        if headers:
            curl.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in headers.items()])
        return curl

    def upload(self, source: Path, url: str) -> None:
        if not (self.prefix and url.startswith(self.prefix)):
            super().upload(source, url)
            return
        announced = {"X-Size": str(source.stat().st_size), "X-Sha512": sha512_file(source)}
        curl = super()._handle(url)
        try:
            curl.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in self._scoped_headers(url, announced).items()])
            with open(source, "rb") as handle:
                self._put(curl, handle, source.stat().st_size)
                status = self._perform(curl, url)
        finally:
            curl.close()
        self._check_status(url, status, "PUT")


def use_server_credentials(server_url: str, token: str) -> None:
    """From now on, http(s) transfers to ``server_url`` carry the pilot's token."""
    register_scheme(["http", "https"], ServerAuthHttp(prefix=server_url.rstrip("/") + "/", token=token))
