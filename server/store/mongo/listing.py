"""Keyset pagination shared by every listing of the MongoDB store.

A page is the query sorted by the requested fields plus a unique tie-breaker
(``seq``, the creation order, or the dataset number); the cursor holds the
sort values of the last row returned, and the next page asks for rows strictly
after them, one index range per sort prefix (:func:`after_clauses`). Unlike skip/limit this neither repeats nor skips rows when others
are inserted meanwhile, and each page costs one index range scan.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from ..query import ListOptions, Page, decode_cursor, encode_cursor, project

Doc = dict[str, Any]


def after_clauses(sort: Sequence[tuple[str, int]], values: Sequence[Any]) -> list[Doc]:
    """Rows strictly after ``values`` in ``sort`` order, as one index range per
    prefix, the deepest first: ``{a: v, seq: {$gt: s}}``, then ``{a: {$gt: v}}``.
    Read in that sequence they continue the order; the page stops as soon as
    it is full (the SQLite store does the same; an ``$or`` of the prefixes
    would leave the merge and the sort to the planner)."""
    out: list[Doc] = []
    for i in reversed(range(len(sort))):
        name, direction = sort[i]
        branch: Doc = {sort[j][0]: values[j] for j in range(i)}
        branch[name] = {"$gt" if direction == 1 else "$lt": values[i]}
        out.append(branch)
    return out


async def page(collection: AsyncCollection[Doc], query: Doc, opts: ListOptions, *,
               sort: Sequence[tuple[str, int]], to_doc: Callable[[Doc], Doc], id_field: str,
               adjust: Callable[[list[Doc]], Awaitable[None]] | None = None) -> Page:
    """One page of ``query`` in ``sort`` order (its last field must be unique).
    ``adjust``: called on the page's documents before they are converted."""
    ranges: list[Doc] = [query]
    if opts.after is not None:
        values = decode_cursor(opts.after, len(sort))
        ranges = [{"$and": [query, branch]} if query else branch for branch in after_clauses(sort, values)]
    want = None if opts.limit is None else opts.limit + 1  # one more tells whether a next page exists
    docs: list[Doc] = []
    for q in ranges:
        cursor = collection.find(q).sort(list(sort))
        if want is not None:
            cursor = cursor.limit(want - len(docs))
        docs.extend(await cursor.to_list())
        if want is not None and len(docs) >= want:
            break
    next_cursor = None
    if opts.limit is not None and len(docs) > opts.limit:
        docs = docs[:opts.limit]
        last = docs[-1]
        next_cursor = encode_cursor([last.get(name) for name, _ in sort])
    if adjust is not None:
        await adjust(docs)
    rows = [project(to_doc(d), opts.keys, id_field) for d in docs]
    return Page(rows=rows, next_cursor=next_cursor)
