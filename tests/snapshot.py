"""A dump of every table, to show that a refused request or frame left the database as it was."""

from flask import Flask
from sqlalchemy import select

from app.extensions import db

# Written by a console's heartbeat (a ping), which is not a change the refusal made.
VOLATILE = {("agent", "last_seen_at")}


def dump(app: Flask) -> dict[str, list[str]]:
    with app.app_context():
        rows = {}
        for table in db.metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) not in VOLATILE]
            rows[table.name] = sorted(repr(tuple(row)) for row in db.session.execute(select(*columns)))
        db.session.remove()
        return rows
