"""MongoDB backend of the store (pymongo's ``AsyncMongoClient``).

``open_mongo_store(url)`` returns a ready :class:`MongoStore`; ``open_store``
calls it for ``mongodb://`` and ``mongodb+srv://`` URLs. See docs/store.md,
section "MongoDB backend", for the collections, the claim path and the
transaction-less fallback.
"""
from __future__ import annotations

from .connection import MongoConnectionError
from .store import MongoStore, open_mongo_store

__all__ = ["MongoStore", "MongoConnectionError", "open_mongo_store"]
