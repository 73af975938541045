"""Keyset pagination shared by every listing of the MongoDB store.

A page is the query sorted by the requested fields plus a unique tie-breaker
(``seq``, the creation order, or the dataset number); the cursor holds the
sort values of the last row returned, and the next page asks for rows strictly
after them. Unlike skip/limit this neither repeats nor skips rows when others
are inserted meanwhile, and each page costs one index range scan.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from ..query import ListOptions, Page, decode_cursor, encode_cursor, project

Doc = dict[str, Any]


def _after_clause(sort: Sequence[tuple[str, int]], values: Sequence[Any]) -> Doc:
    """Rows strictly after ``values`` in ``sort`` order, as one ``$or`` of prefixes."""
    branches: list[Doc] = []
    for i, (name, direction) in enumerate(sort):
        branch: Doc = {sort[j][0]: values[j] for j in range(i)}
        branch[name] = {"$gt" if direction == 1 else "$lt": values[i]}
        branches.append(branch)
    return {"$or": branches}


async def page(collection: AsyncCollection[Doc], query: Doc, opts: ListOptions, *,
               sort: Sequence[tuple[str, int]], to_doc: Callable[[Doc], Doc], id_field: str) -> Page:
    """One page of ``query`` in ``sort`` order (its last field must be unique)."""
    if opts.after is not None:
        values = decode_cursor(opts.after, len(sort))
        query = {"$and": [query, _after_clause(sort, values)]} if query else _after_clause(sort, values)
    cursor = collection.find(query).sort(list(sort))
    if opts.limit is not None:
        cursor = cursor.limit(opts.limit + 1)  # one more tells whether a next page exists
    docs = await cursor.to_list()
    next_cursor = None
    if opts.limit is not None and len(docs) > opts.limit:
        docs = docs[:opts.limit]
        last = docs[-1]
        next_cursor = encode_cursor([last.get(name) for name, _ in sort])
    rows = [project(to_doc(d), opts.keys, id_field) for d in docs]
    return Page(rows=rows, next_cursor=next_cursor)
