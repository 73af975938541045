"""Module sources carried with a submission: which ``src`` a config names by
relative path, where each must come from, and the bundle's limits.

IceProd runs a relative ``src`` as ``./src`` in the task's work dir, so the
file has to get there: either a ``data`` entry stages it (its ``local`` name,
else the basename of its ``remote``, is the ``src``), or ``frazil submit``
carries it from beside the config (content-addressed by sha512, stored with
the config version and staged by the pilot before the module runs). Used by
the CLI (to collect), the server (to check a bundle) and the pilot (to stage).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from common.commands import src_url

SHA512_RE = re.compile(r"^[0-9a-f]{128}$")
MAX_SOURCE_FILES = 256
"""More module files than any real config names; a bundle is a handful of scripts."""
DEFAULT_MAX_BUNDLE_BYTES = 8 * 1024 * 1024
"""Default of the server setting ``max_source_bundle_bytes`` (all carried files together)."""


def sha512_of(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


def clean_path(src: str) -> str | None:
    """The work-dir path of a relative ``src`` (``./a/b.py`` -> ``a/b.py``), or
    None when it is not one a bundle may carry (absolute, ``..``, odd characters)."""
    if not src or src.startswith("/") or "\\" in src or "\x00" in src or len(src) > 1024:
        return None
    path = posixpath.normpath(src)
    if path in (".", "") or path.startswith("../") or path == "..":
        return None
    return path


@dataclass(frozen=True)
class RelativeSource:
    """One module whose ``src`` is a relative path, and whether a data entry stages it."""

    where: str
    """The module's path in the config, e.g. ``config['tasks'][0]['trays'][0]['modules'][1]``."""
    src: str
    path: str
    """``src`` as a work-dir path (:func:`clean_path`)."""
    staged: bool


def _staged_names(*scopes: Any) -> set[str]:
    """Names that the data entries of these scopes (task, tray, module) put in the work dir."""
    names: set[str] = set()
    for scope in scopes:
        for entry in (scope.get("data") or []) if isinstance(scope, dict) else []:
            if not isinstance(entry, dict) or entry.get("movement", "input") not in ("input", "both"):
                continue
            local = entry.get("local") or posixpath.basename(str(entry.get("remote") or "").rstrip("/"))
            if isinstance(local, str) and local:
                names.add(posixpath.normpath(local))
    return names


def relative_sources(config: Mapping[str, Any]) -> Iterator[RelativeSource]:
    """Every module ``src`` that is a relative path without macros (a ``$`` value is
    known only per job), in config order."""
    for t, task in enumerate(config.get("tasks") or []):
        if not isinstance(task, dict):
            continue
        for r, tray in enumerate(task.get("trays") or []):
            if not isinstance(tray, dict):
                continue
            for m, module in enumerate(tray.get("modules") or []):
                if not isinstance(module, dict):
                    continue
                src = module.get("src")
                if not isinstance(src, str) or not src.strip() or "$" in src or src_url(src):
                    continue
                path = clean_path(src.strip())
                if path is None:
                    continue
                staged = path in _staged_names(config.get("steering"), task, tray, module)
                yield RelativeSource(where=f"config['tasks'][{t}]['trays'][{r}]['modules'][{m}]['src']",
                                     src=src, path=path, staged=staged)


class BundleError(ValueError):
    """A bundle the server must refuse (the message names the file and the limit)."""


def collect(config: Mapping[str, Any], base: Path, max_bytes: int = DEFAULT_MAX_BUNDLE_BYTES,
            ) -> tuple[dict[str, bytes], list[str]]:
    """The files to carry from ``base`` (the config's folder) and the problems:
    each relative ``src`` neither beside the config nor staged by a ``data`` entry."""
    files: dict[str, bytes] = {}
    problems: list[str] = []
    root = base.resolve()
    total = 0
    for source in relative_sources(config):
        if source.path in files:
            continue
        candidate = (root / source.path).resolve()
        if candidate.is_file() and candidate.is_relative_to(root):
            total += candidate.stat().st_size
            # sized before read: a huge file beside the config is refused, never loaded
            files[source.path] = candidate.read_bytes() if total <= max_bytes else b""
        elif not source.staged:
            problems.append(f"{source.where}: module source {source.src!r} is neither a file beside the config "
                            f"({root / source.path}) nor staged by a data entry")
    if total > max_bytes:
        problems.append(f"the module sources beside the config are {total} bytes, more than the "
                        f"{max_bytes} a submission may carry")
    return files, problems


def encode(files: Mapping[str, bytes]) -> dict[str, str]:
    """The ``sources`` member of a submit payload: {path: base64 of the bytes}."""
    return {path: base64.b64encode(data).decode("ascii") for path, data in files.items()}


def decode(value: Any, max_bytes: int) -> dict[str, bytes]:
    """A submit payload's ``sources`` back to bytes, or BundleError naming the problem."""
    if not isinstance(value, dict):
        raise BundleError(f"key 'sources' must be an object of {{path: base64}}, got {type(value).__name__}")
    if len(value) > MAX_SOURCE_FILES:
        raise BundleError(f"key 'sources' holds {len(value)} files, more than {MAX_SOURCE_FILES}")
    files: dict[str, bytes] = {}
    total = 0
    for path, text in value.items():
        clean = clean_path(path) if isinstance(path, str) else None
        if clean is None or clean != path:
            raise BundleError(f"sources: {path!r} is not a clean relative path (no '/', '..' or './' prefix)")
        if not isinstance(text, str) or len(text) > 2 * max_bytes:
            raise BundleError(f"sources[{path!r}] must be a base64 string within the size limit")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise BundleError(f"sources[{path!r}] is not valid base64") from None
        total += len(data)
        if total > max_bytes:
            raise BundleError(f"sources: the bundle is larger than {max_bytes} bytes "
                              "(setting max_source_bundle_bytes)")
        files[path] = data
    return files
