"""Finding a dataset the way users name it: by its id or by its number."""
from __future__ import annotations

from server.store import Dataset, Store

MAX_NUMBER_DIGITS = 18
"""A longer number names no dataset, and would overflow the database's integers."""


async def dataset_by_key(store: Store, key: str) -> Dataset | None:
    """The dataset whose number (all digits) or id is ``key``; None when there is none.

    The API's paths, the scratch store and the website all accept both."""
    dataset = None
    if key.isdigit() and len(key) <= MAX_NUMBER_DIGITS:
        dataset = await store.get_dataset_by_number(int(key))
    return dataset if dataset is not None else await store.get_dataset(key)
