"""The storage token a claim reply carries for one attempt.

A task whose config holds storage scopes (``token_scopes``, worked out at
submit), or whose job has registered files in the storage namespace
(``task_files``: their scopes are added here, per job), gets an access token
for them: the credential of the dataset's task,
else of the dataset, else of the dataset's owner, else of its group — the
first OAuth credential for the storage namespace. The token is narrowed to
the task's scopes by RFC 8693 token exchange at the issuer when the issuer
does that; otherwise the stored access token goes as it is (broader than the
task needs: docs/operators.md says so). Exchanged tokens are cached until a
minute before they expire, so a busy dataset does not ask the issuer per claim.
Nothing here is stored: the token lives in the reply and the pilot's memory.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from typing import Any

from server.credentials.cipher import CipherError, SecretCipher
from server.credentials.scopes import entry_scopes, namespace_path
from server.credentials.service import CredentialService, token_claims
from server.store import Credential, Store

LOOKUP_SECONDS = 30.0
"""How long which credential serves a (dataset, task, owner) is remembered: a busy dataset's
claims must not cost four store reads each; a credential added or deleted counts within this."""
TOUCH_SECONDS = 3600.0
"""``last_use`` is written at most this often per credential (it only feeds the refresh window)."""


class StorageTokens:
    def __init__(self, cipher: SecretCipher, namespace: str, token_clients: dict[str, Any],
                 max_entries: int = 10_000) -> None:
        self.cipher, self.namespace, self.token_clients = cipher, namespace, token_clients
        self.max_entries = max_entries
        self._scopes: OrderedDict[tuple[str, int | None], dict[str, str]] = OrderedDict()
        self._tokens: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self._touched: dict[tuple[str, str, str], float] = {}
        self._lookups: dict[tuple[str, str, tuple[str, str] | None], tuple[float, Credential | None]] = {}

    def scopes(self, dataset_id: str, version: int | None, config_text: str, task_name: str) -> str:
        """The task's scopes (parsed once per config version)."""
        key = (dataset_id, version)
        table = self._scopes.get(key)
        if table is None:
            table = {}
            config = json.loads(config_text)
            for task in (config or {}).get("tasks") or []:
                if isinstance(task, dict):
                    found = {s for v in (task.get("token_scopes") or {}).values() if isinstance(v, str)
                             for s in v.split() if "$" not in s and s.startswith("storage.")}
                    table[str(task.get("name", ""))] = " ".join(sorted(found))
            self._scopes[key] = table
            while len(self._scopes) > 256:
                self._scopes.popitem(last=False)
        return table.get(task_name, "")

    def _for_namespace(self, credentials: list[Credential]) -> Credential | None:
        for credential in credentials:
            if credential.type == "oauth" and any(namespace_path(u, self.namespace) is not None
                                                  for u in (credential.url, credential.transfer_prefix) if u):
                return credential
        return None

    async def _credential(self, store: Store, dataset_id: str, task_name: str,
                          owner: tuple[str, str] | None) -> Credential | None:
        key = (dataset_id, task_name, owner)
        now = time.monotonic()
        cached = self._lookups.get(key)
        if cached is not None and now - cached[0] < LOOKUP_SECONDS:
            return cached[1]
        found = await self._lookup(store, dataset_id, task_name, owner)
        if len(self._lookups) > self.max_entries:
            self._lookups.clear()
        self._lookups[key] = (now, found)
        return found

    async def _lookup(self, store: Store, dataset_id: str, task_name: str,
                      owner: tuple[str, str] | None) -> Credential | None:
        lookups = [("task", f"{dataset_id}/{task_name}"), ("dataset", dataset_id)]
        if owner is not None:
            lookups += [("user", owner[0]), ("group", owner[1])]
        for kind, name in lookups:
            found = self._for_namespace(await store.list_credentials(kind, [name]))
            if found is not None:
                return found
        return None

    def file_scopes(self, files: list[dict[str, Any]]) -> set[str]:
        """Scopes for a job's registered files (``task_files``), by the same rule as at submit."""
        found = set()
        for entry in files:
            inside = namespace_path(str(entry.get("remote", "")), self.namespace)
            if inside is not None:
                found |= entry_scopes(str(entry.get("movement", "input")), inside)
        return found

    async def for_task(self, store: Store, *, dataset_id: str, version: int | None, config_text: str,
                       task_name: str, owner: tuple[str, str] | None,
                       files: list[dict[str, Any]] | None = None) -> str | None:
        """The token for one attempt, or None (no scopes needed, or no credential)."""
        extra = self.file_scopes(files or [])
        if not extra and '"storage.' not in config_text:  # most datasets: nothing to do on the claim path
            return None
        scopes = " ".join(sorted(set(self.scopes(dataset_id, version, config_text, task_name).split()) | extra))
        if not scopes:
            return None
        credential = await self._credential(store, dataset_id, task_name, owner)
        if credential is None:
            return None
        try:
            access = self.cipher.open(credential.secret).get("access_token", "")
        except CipherError:
            return None
        if not access:
            return None
        now = time.time()
        key = (hashlib.sha256(access.encode()).hexdigest(), scopes)
        cached = self._tokens.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        service = CredentialService(store, self.cipher, self.token_clients)
        token = await service.exchange(access, scopes) or access
        expires = token_claims(token).get("exp")
        until = float(expires) - 60 if isinstance(expires, (int, float)) else now + 300
        self._tokens[key] = (min(until, now + 3600), token)
        while len(self._tokens) > self.max_entries:
            self._tokens.popitem(last=False)
        stamp = (credential.owner_kind, credential.owner, credential.url)
        if now - self._touched.get(stamp, 0.0) > TOUCH_SECONDS:
            self._touched[stamp] = now
            await store.touch_credential(credential, now)
        return token
