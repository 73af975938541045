"""Namespaces of the federation and where their objects live on disk."""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote


class BadPath(ValueError):
    """A request path the federation will not serve (traversal, control characters, ...)."""


def normalize_prefix(prefix: str) -> str:
    """``/icecube/wipac/`` → ``/icecube/wipac``; the root namespace is ``/``."""
    if not prefix.startswith("/") or "\x00" in prefix or ".." in prefix.split("/"):
        raise BadPath(f"namespace prefix must be an absolute path without '..': {prefix!r}")
    cleaned = posixpath.normpath(prefix)
    return "/" if cleaned in ("/", "//") else cleaned


@dataclass(frozen=True)
class Namespaces:
    root: Path
    prefixes: tuple[str, ...]

    def clean(self, raw: str) -> str:
        """The request path, decoded and checked: absolute, no '..', no NUL."""
        path = unquote(raw)
        if not path.startswith("/") or "\x00" in path or any(ord(c) < 32 for c in path):
            raise BadPath("bad path")
        parts = path.split("/")
        if ".." in parts or "." in parts:
            raise BadPath("'.' and '..' are not allowed in paths")
        return "/" + "/".join(p for p in parts if p)

    def match(self, path: str) -> str | None:
        """The longest namespace prefix holding ``path`` (None: outside every namespace)."""
        best = None
        for prefix in self.prefixes:
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                if best is None or len(prefix) > len(best):
                    best = prefix
        return best

    @staticmethod
    def relative(prefix: str, path: str) -> str:
        """The path inside its namespace, as token scopes name it (``/`` for the namespace itself)."""
        inside = path if prefix == "/" else path[len(prefix):]
        return inside or "/"

    def local(self, path: str) -> Path:
        return self.root.joinpath(path.lstrip("/")) if path != "/" else self.root
