"""Many rows in one statement whose text does not depend on how many: ``INSERT … SELECT * FROM
unnest(array, array, …)``.

SQLAlchemy's ``executemany`` turns a list of rows into one ``VALUES (…), (…)`` statement per
batch size: a statement PostgreSQL parses and plans, and asyncpg prepares, for every new count,
and per-row parameter processing in Python. Here each column travels as one array (encoded by
asyncpg in C), the statement is the same for one row or a thousand, so it is prepared once per
connection. Hot paths that store batches (data-exchange's routing) use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["as_columns", "insert_columns"]

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_STATEMENTS: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool], Any] = {}


def _statement(
    table: Table, names: tuple[str, ...], returning: tuple[str, ...], skip_conflicts: bool
) -> Any:
    key = (table.fullname, names, returning, skip_conflicts)
    statement = _STATEMENTS.get(key)
    if statement is None:
        arrays = ", ".join(
            f"CAST(:c{i} AS {table.c[name].type.compile(dialect=_DIALECT)}[])"
            for i, name in enumerate(names)
        )
        for name in returning:
            table.c[name]  # a KeyError for a column the table does not have
        # Every name is a column of ``table`` (looked up above): no caller text reaches the SQL.
        targets = ", ".join(f'"{name}"' for name in names)
        sql = f'INSERT INTO "{table.name}" ({targets}) SELECT * FROM unnest({arrays})'  # noqa: S608
        if skip_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        if returning:
            sql += " RETURNING " + ", ".join(f'"{name}"' for name in returning)
        statement = _STATEMENTS[key] = text(sql)
    return statement


async def insert_columns(
    session: AsyncSession,
    table: Table,
    columns: dict[str, Sequence[Any]],
    *,
    returning: Sequence[str] = (),
    skip_conflicts: bool = False,
) -> list[Any]:
    """Insert rows given column by column (equal lengths), in the caller's transaction.

    ``skip_conflicts``: rows that would break a unique constraint are left out
    (``ON CONFLICT DO NOTHING``). Returns the ``returning`` columns of the rows inserted, as
    rows; their order is not promised, so return a key to match them by.
    """
    names = tuple(columns)
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of unequal length: {sorted(lengths)}")
    if not names or lengths == {0}:
        return []
    statement = _statement(table, names, tuple(returning), skip_conflicts)
    params = {f"c{i}": list(columns[name]) for i, name in enumerate(names)}
    result = await session.execute(statement, params)
    return list(result.all()) if returning else []


def as_columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows (dicts with the same keys) as columns, for ``insert_columns``."""
    if not rows:
        return {}
    return {name: [row[name] for row in rows] for name in rows[0]}
