"""Module sources: the scripts a config names by relative path, carried at submit.

Every method is a coroutine; its docstring is its contract (see
``server/store/interface.py`` for the conventions all roles share). Blobs are
content-addressed by the sha512 of their bytes (hex), so the same script
submitted with many datasets is stored once; a config version's manifest maps
each relative path to a blob.
"""
from __future__ import annotations

import abc
from typing import Mapping, Sequence


class SourcesRole(abc.ABC):
    """The module-sources part of :class:`server.store.Store`."""

    @abc.abstractmethod
    async def put_source_blobs(self, blobs: Sequence[bytes]) -> list[str]:
        """Store each blob under the sha512 (hex) of its bytes, once; return the
        hashes in order. Storing a blob that is already there changes nothing."""

    @abc.abstractmethod
    async def set_config_sources(self, dataset_id: str, version: int, manifest: Mapping[str, str]) -> None:
        """Record ``{relative path: sha512}`` for that config version, replacing
        what it had. InvalidArgumentError when a hash names no stored blob or a
        path is not a clean relative path; NotFoundError for an unknown dataset."""

    @abc.abstractmethod
    async def get_config_sources(self, dataset_id: str, version: int | None = None) -> dict[str, str]:
        """The manifest that applies to that version (newest when None): the one
        recorded with the newest version <= it, so later config versions (edits)
        keep the sources submitted with an earlier one; {} when there is none."""

    @abc.abstractmethod
    async def get_source_blob(self, dataset_id: str, sha512: str) -> bytes | None:
        """The blob, only when a manifest of this dataset names it (a hash alone
        never reads another dataset's sources); None otherwise."""
