"""Module sources attached to a submission (``sources`` in the submit payload).

A bundle is ``{relative path: base64}``, the files beside the config that its
modules name as ``src`` (``frazil submit`` collects them). It is checked and
its blobs stored (content-addressed) while the request is answered; the
manifest ``{path: sha512}`` travels in the action message and is recorded with
the config version when the dataset is made. Relative sources that nothing
puts in the work dir are reported as warnings, with their path.
"""
from __future__ import annotations

from typing import Any, Mapping

from common.sources import BundleError, decode, relative_sources
from server.errors import ActionInputError
from server.settings import Settings
from server.store import Store


async def take_bundle(store: Store, settings: Settings, config: Mapping[str, Any],
                      raw: Any) -> tuple[dict[str, str], list[str]]:
    """(manifest, warnings) for a submission; ActionInputError (400) for a bad bundle."""
    try:
        files = decode(raw, settings.max_source_bundle_bytes) if raw is not None else {}
    except BundleError as exc:
        raise ActionInputError(str(exc)) from None
    named = list(relative_sources(config))
    unused = sorted(set(files) - {s.path for s in named})
    if unused:
        raise ActionInputError(f"sources: {', '.join(map(repr, unused))} is the src of no module of the config")
    warnings = [f"Warning: {s.where}: module source {s.src!r} is neither carried with the submission nor staged by a "
                f"data entry; IceProd runs it as ./{s.path} in the work dir, where nothing puts it "
                "(frazil submit carries the files beside the config)"
                for s in named if s.path not in files and not s.staged]
    digests = await store.put_source_blobs(list(files.values())) if files else []
    return dict(zip(files, digests)), warnings
