"""The migrations build exactly the schema the models describe, from an empty database."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.extensions import db
from tests.support import migrated_app


def test_empty_database_upgrades_to_head_matching_the_models(tmp_path):
    app = migrated_app(tmp_path)
    with app.app_context(), db.engine.connect() as connection:
        assert {"workstream", "conversation", "message", "alembic_version"} <= set(
            inspect(connection).get_table_names()
        )
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
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
