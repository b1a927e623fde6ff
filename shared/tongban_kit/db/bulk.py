"""Many rows in one statement whose text does not depend on how many: ``INSERT … SELECT * FROM
unnest(array, array, …)``.

SQLAlchemy's ``executemany`` turns a list of rows into one ``VALUES (…), (…)`` statement per
batch size: a statement PostgreSQL parses and plans, and asyncpg prepares, for every new count,
and per-row parameter processing in Python. Here each column travels as one array (encoded by
asyncpg in C), the statement is the same for one row or a thousand, so it is prepared once per
connection. Once the session's transaction has begun on the server, it runs on the session's
asyncpg connection directly (SQLAlchemy's statement and result handling had cost as much as
asyncpg's); as a transaction's first statement it goes through SQLAlchemy, which begins it. Hot
paths that store batches (data-exchange's routing) use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["as_columns", "insert_columns"]

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_Key = tuple[str, tuple[str, ...], tuple[str, ...], bool]
_STATEMENTS: dict[_Key, tuple[str, Any]] = {}


def _statement(
    table: Table, names: tuple[str, ...], returning: tuple[str, ...], skip_conflicts: bool
) -> tuple[str, Any]:
    """The statement as asyncpg takes it (``$1``) and as SQLAlchemy does (``:c0``)."""
    key = (table.fullname, names, returning, skip_conflicts)
    statement = _STATEMENTS.get(key)
    if statement is None:
        types = [table.c[name].type.compile(dialect=_DIALECT) for name in names]
        arrays = ", ".join(f"${i}::{type_}[]" for i, type_ in enumerate(types, start=1))
        for name in returning:
            table.c[name]  # a KeyError for a column the table does not have
        # Every name is a column of ``table`` (looked up above): no caller text reaches the SQL.
        targets = ", ".join(f'"{name}"' for name in names)
        sql = f'INSERT INTO "{table.name}" ({targets}) SELECT * FROM unnest({arrays})'  # noqa: S608
        if skip_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        if returning:
            sql += " RETURNING " + ", ".join(f'"{name}"' for name in returning)
        casts = ", ".join(f"CAST(:c{i} AS {type_}[])" for i, type_ in enumerate(types))
        named = sql.replace(f"unnest({arrays})", f"unnest({casts})")
        statement = _STATEMENTS[key] = (sql, text(named))
    return statement


async def insert_columns(
    session: AsyncSession,
    table: Table,
    columns: dict[str, Sequence[Any]],
    *,
    returning: Sequence[str] = (),
    skip_conflicts: bool = False,
) -> Sequence[Sequence[Any]]:
    """Insert rows given column by column (equal lengths), in the caller's transaction.

    ``skip_conflicts``: rows that would break a unique constraint are left out
    (``ON CONFLICT DO NOTHING``). Returns the ``returning`` columns of the rows inserted, as
    rows indexed by position; their order is not promised, so return a key to match them by.
    """
    names = tuple(columns)
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of unequal length: {sorted(lengths)}")
    if not names or lengths == {0}:
        return []
    raw_sql, statement = _statement(table, names, tuple(returning), skip_conflicts)
    arrays = [list(columns[name]) for name in names]
    connection = await session.connection()
    driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
    if not driver.is_in_transaction():
        result = await session.execute(statement, {f"c{i}": a for i, a in enumerate(arrays)})
        return list(result.all()) if returning else []
    if returning:
        made: list[asyncpg.Record] = await driver.fetch(raw_sql, *arrays)
        return made
    await driver.execute(raw_sql, *arrays)
    return []


def as_columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows (dicts with the same keys) as columns, for ``insert_columns``."""
    if not rows:
        return {}
    return {name: [row[name] for row in rows] for name in rows[0]}
