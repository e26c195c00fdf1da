"""The migrations build exactly the schema the models describe, from an empty database, and keep the data
of a database one revision behind. Run on PostgreSQL too (TEST_DATABASE_URL)."""

from datetime import datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, insert, inspect, select

import app as app_module
from app import search
from app.extensions import db
from tests.support import migrated_app


def test_empty_database_upgrades_to_head_matching_the_models(tmp_path):
    app = migrated_app(tmp_path)
    with app.app_context(), db.engine.connect() as connection:
        assert {"workstream", "conversation", "message", "alembic_version"} <= set(
            inspect(connection).get_table_names()
        )
        # The search index is made by the migrations alone (app/search.py).
        context = MigrationContext.configure(
            connection, opts={"include_name": lambda name, type_, _parents: not search.outside_models(name, type_)}
        )
        differences = compare_metadata(context, db.metadata)
        assert differences == []
        db.engine.dispose()


def test_upgrading_twice_changes_nothing(tmp_path):
    migrated_app(tmp_path)
    app = migrated_app(tmp_path)
    with app.app_context():
        assert db.session.execute(db.text("select count(*) from alembic_version")).scalar() == 1
        db.engine.dispose()


def test_constraint_names_are_unique_across_the_schema():
    # PostgreSQL refuses two constraints of one name; SQLite silently keeps both, so test it here.
    from app.extensions import db as database

    names = [
        constraint.name
        for table in database.metadata.tables.values()
        for constraint in table.constraints
        if constraint.name is not None
    ]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def _value(table: Table, column: Column, inserted: dict[str, dict]):
    """A value for `column` that fits its type, or the id of the row already inserted in the table its
    foreign key refers to."""
    for foreign_key in column.foreign_keys:
        referred = inserted.get(foreign_key.column.table.name)
        return referred[foreign_key.column.name] if referred else None
    kind = column.type
    if isinstance(kind, Boolean):
        return True
    if isinstance(kind, Integer):
        return 7
    if isinstance(kind, DateTime):
        return datetime(2026, 1, 2, 3, 4, 5)
    if isinstance(kind, String):
        return f"{table.name}.{column.name}"[: kind.length or None]
    raise AssertionError(f"teach this test a value for {table.name}.{column.name} ({kind!r})")


def test_upgrading_from_the_previous_revision_keeps_every_row(tmp_path):
    """One row in every table of the previous revision's schema survives the upgrade to head (on SQLite
    a batch migration copies whole tables; on PostgreSQL it alters them in place)."""
    script = ScriptDirectory(str(Path(app_module.__file__).parent / "migrations"))
    previous = script.get_revision(script.get_current_head()).down_revision
    assert isinstance(previous, str), "expected one previous revision"
    app = migrated_app(tmp_path, revision=previous)
    with app.app_context():
        before = MetaData()
        inserted: dict[str, dict] = {}
        with db.engine.begin() as connection:
            before.reflect(connection)
            for table in before.sorted_tables:
                # The search index's tables are filled by the message table's triggers.
                if table.name != "alembic_version" and not search.outside_models(table.name, "table"):
                    inserted[table.name] = {c.name: _value(table, c, inserted) for c in table.columns}
                    connection.execute(insert(table).values(inserted[table.name]))
        upgrade()
        after = MetaData()
        with db.engine.connect() as connection:
            after.reflect(connection)
            for name, row in inserted.items():
                kept = connection.execute(select(after.tables[name])).mappings().all()
                assert len(kept) == 1, name
                assert {k: v for k, v in kept[0].items() if k in row} == {
                    k: v for k, v in row.items() if k in kept[0]
                }, name
        db.engine.dispose()
