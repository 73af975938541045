"""Filtered, projected, keyset-paginated listings shared by every table.

Keyset (not OFFSET) pagination: the cursor holds the sort values and ``seq``
of the last row returned and the next page starts strictly after them. Rows
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
    clauses, params = list(where.clauses), list(where.params)
    if opts.after is not None:
        values = decode_cursor(opts.after, len(order))
        alternatives = []
        for i, (column, direction) in enumerate(order):
            parts = [f"{c} = ?" for c, _ in order[:i]] + [f"{column} {'>' if direction == 1 else '<'} ?"]
            alternatives.append("(" + " AND ".join(parts) + ")")
            params.extend(values[:i] + [values[i]])
        clauses.append("(" + " OR ".join(alternatives) + ")")
    sql = (f"SELECT {columns}, " + ", ".join(f"{c} AS _k{i}" for i, (c, _) in enumerate(order))
           + f" FROM {table} WHERE {' AND '.join(clauses) or '1'} ORDER BY "
           + ", ".join(f"{c} {'ASC' if d == 1 else 'DESC'}" for c, d in order))
    if opts.limit is not None:
        sql += f" LIMIT {int(opts.limit) + 1}"
    rows = conn.execute(sql, params).fetchall()
    next_cursor = None
    if opts.limit is not None and len(rows) > opts.limit:
        rows = rows[:opts.limit]
        last = rows[-1]
        next_cursor = encode_cursor([last[f"_k{i}"] for i in range(len(order))])
    return Page([project(to_doc(r), opts.keys, id_field) for r in rows], next_cursor)
