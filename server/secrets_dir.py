"""The server's secrets are its own: signing key, database and data dir readable by it alone.

``frazil server`` calls :func:`protect` before it opens anything: files it
creates from then on are owner-only (umask 077), the data dir is 0700 (0711
when local pilots run as another user, who must reach their own directory
``<data_dir>/pilots/<id>`` by name but may list nothing), and an existing
signing key or SQLite database (with its WAL and shared-memory files) is
made 0600. Modules never see these paths anyway (the module sandbox covers
the data dir); this is the boundary where the sandbox is off or bwrap is
missing, and against other users of the machine (docs/operators.md, "Trust
boundaries").
"""
from __future__ import annotations

import os
from pathlib import Path

from server.settings import Settings
from server.store import InvalidArgumentError, sqlite_path_from_url


def _owned(path: Path) -> bool:
    try:
        return path.stat().st_uid == os.geteuid()
    except OSError:
        return False


def secret_paths(settings: Settings) -> list[Path]:
    """The signing key and the SQLite files (those that exist)."""
    paths = [settings.path(settings.auth_key_file, "auth.key")]
    if settings.db.startswith("sqlite:"):
        try:
            db = Path(sqlite_path_from_url(settings.db))
        except InvalidArgumentError:  # opening the store reports it
            return [p for p in paths if p.exists()]
        paths += [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return [p for p in paths if p.exists()]


def protect(settings: Settings, *, pilots_other_user: bool = False) -> None:
    """Owner-only umask, data dir 0700 (0711), existing key and database 0600."""
    os.umask(0o077)
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if _owned(data_dir):
        os.chmod(data_dir, 0o711 if pilots_other_user else 0o700)
    for path in secret_paths(settings):
        if _owned(path):
            os.chmod(path, 0o600)
