"""Statements on the database driver itself, for the few paths run so often that SQLAlchemy's
per-statement machinery (building, keying and compiling a statement, loading ORM objects) costs more
than the database does: a customer's message (posting.py) and a returning widget's hello
(returning.py). Everything else goes through the ORM."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.engine import Engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def native(sql: str, sqlite: bool) -> str:
    """`sql` with :name parameters in the driver's own style: sqlite3 takes :name as it is; psycopg
    wants %(name)s."""
    return sql if sqlite else re.sub(r":(\w+)", r"%(\1)s", sql)


def timestamp(value: datetime, sqlite: bool) -> object:
    """A timestamp as the driver is to store it: SQLAlchemy's SQLite DateTime keeps this text; psycopg
    takes the datetime."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else value


def read_timestamp(value: object) -> datetime | None:
    """A timestamp as the driver returns it (the text SQLite keeps, or psycopg's datetime)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@contextmanager
def reading(engine: Engine) -> Iterator[object]:
    """A cursor for reads outside any transaction of the session's. On SQLite the connection is in
    autocommit (sqlite.py), so a read takes no write lock, which the session's BEGIN IMMEDIATE would;
    on PostgreSQL the pool rolls back the read's transaction when the connection goes back."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
    finally:
        connection.close()
