"""Filtered, projected, keyset-paginated listings shared by every table.

Keyset (not OFFSET) pagination: the cursor holds the sort values and ``seq``
of the last row returned and the next page starts strictly after them, with
conditions an index serves as a range (:func:`after_clauses`). Rows
inserted meanwhile get larger ``seq`` values, so a walk over a growing table
never repeats nor misses a row that existed when it started, and page N costs
the same as page 1.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any, Callable, Mapping, Sequence

from ..query import InvalidQuery, ListOptions, Page, decode_cursor, encode_cursor, project


class Where:
    """Accumulates AND-ed SQL conditions with their parameters."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def add(self, clause: str, *params: Any) -> "Where":
        self.clauses.append(clause)
        self.params.extend(params)
        return self

    def any_of(self, column: str, values: Sequence[Any] | None) -> "Where":
        """``column IN (...)``; an empty list matches nothing (as Mongo's $in: [])."""
        if values is not None:
            values = list(values)
            if not values:
                self.clauses.append("0")
            elif len(values) <= 50:
                self.add(f"{column} IN ({','.join('?' * len(values))})", *values)
            else:  # one parameter whatever the size (SQLite caps variables at 32766)
                self.add(f"{column} IN (SELECT value FROM json_each(?))", json.dumps(values))
        return self

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "1"


def after_clauses(order: Sequence[tuple[str, int]], values: Sequence[Any]) -> list[tuple[str, list[Any]]]:
    """The rows strictly after ``values`` in ``order``, as conditions an index
    on the order's columns serves as one range each (never an OR, which
    SQLite cannot walk in index order).

    * All columns in one direction: one row-value comparison,
      ``(a, b, seq) > (?, ?, ?)``.
    * Mixed directions (``priority DESC, seq``): one range per prefix, the
      deepest first: ``a = ? AND seq > ?``, then ``a < ?``. Their results, in
      that sequence, are the order's continuation; the caller stops as soon
      as the page is full, so usually only the first runs.
    """
    ops = {1: ">", -1: "<"}
    if len({d for _, d in order}) == 1:
        cols = ", ".join(c for c, _ in order)
        if len(order) == 1:
            return [(f"{cols} {ops[order[0][1]]} ?", [values[0]])]
        return [(f"({cols}) {ops[order[0][1]]} ({', '.join('?' * len(order))})", list(values))]
    out = []
    for i in reversed(range(len(order))):
        column, direction = order[i]
        parts = [f"{c} = ?" for c, _ in order[:i]] + [f"{column} {ops[direction]} ?"]
        out.append((" AND ".join(parts), list(values[:i]) + [values[i]]))
    return out


def paginate(conn: sqlite3.Connection, *, table: str, columns: str, where: Where, opts: ListOptions,
             to_doc: Callable[[sqlite3.Row], dict[str, Any]], id_field: str,
             sortable: Mapping[str, str] | None = None) -> Page:
    """One page of ``table`` rows matching ``where``, ordered by ``opts.sort`` then ``seq``."""
    order: list[tuple[str, int]] = []
    for name, direction in opts.sort:
        if not sortable or name not in sortable:
            allowed = ", ".join(sorted(sortable or ()))
            raise InvalidQuery(f"cannot sort on {name!r}; sortable fields: {allowed or 'none'}")
        order.append((sortable[name], direction))
    order.append(("seq", 1))
    ranges: list[tuple[str | None, list[Any]]] = [(None, [])]
    if opts.after is not None:
        ranges = list(after_clauses(order, decode_cursor(opts.after, len(order))))
    want = None if opts.limit is None else int(opts.limit) + 1
    rows: list[sqlite3.Row] = []
    for clause, params in ranges:
        clauses = list(where.clauses) + ([clause] if clause else [])
        sql = (f"SELECT {columns}, " + ", ".join(f"{c} AS _k{i}" for i, (c, _) in enumerate(order))
               + f" FROM {table} WHERE {' AND '.join(clauses) or '1'} ORDER BY "
               + ", ".join(f"{c} {'ASC' if d == 1 else 'DESC'}" for c, d in order))
        if want is not None:
            sql += f" LIMIT {want - len(rows)}"
        rows.extend(conn.execute(sql, [*where.params, *params]).fetchall())
        if want is not None and len(rows) >= want:
            break
    next_cursor = None
    if opts.limit is not None and len(rows) > opts.limit:
        rows = rows[:opts.limit]
        last = rows[-1]
        next_cursor = encode_cursor([last[f"_k{i}"] for i in range(len(order))])
    return Page([project(to_doc(r), opts.keys, id_field) for r in rows], next_cursor)
