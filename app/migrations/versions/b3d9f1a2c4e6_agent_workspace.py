"""the agent's workspace: internal notes (never shown to the customer), canned responses, labels,
CSAT ratings (switched per workstream), an index for reports by day, and the full-text index of message bodies (SQLite FTS5 kept by triggers, or a PostgreSQL GIN index)

Revision ID: b3d9f1a2c4e6
Revises: c3d9e1f0a2b7
Create Date: 2026-12-01 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

# The message search index: not in the models (app/search.py reads it; tests/test_migrations.py
# leaves these objects out of the comparison with the models).
CREATE = {
    'sqlite': [
        "CREATE VIRTUAL TABLE message_fts USING fts5(body, content='message', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')",
        "CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN "
        "INSERT INTO message_fts(rowid, body) VALUES (new.id, new.body); END",
        "CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN "
        "INSERT INTO message_fts(message_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
        "CREATE TRIGGER message_fts_update AFTER UPDATE OF body ON message BEGIN "
        "INSERT INTO message_fts(message_fts, rowid, body) VALUES ('delete', old.id, old.body); "
        "INSERT INTO message_fts(rowid, body) VALUES (new.id, new.body); END",
        "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
    ],
    'postgresql': ["CREATE INDEX ix_message_body_fts ON message USING gin (to_tsvector('simple', body))"],
}
DROP = {
    'sqlite': [
        'DROP TRIGGER message_fts_update',
        'DROP TRIGGER message_fts_delete',
        'DROP TRIGGER message_fts_insert',
        'DROP TABLE message_fts',
    ],
    'postgresql': ['DROP INDEX ix_message_body_fts'],
}


# revision identifiers, used by Alembic.
revision = 'b3d9f1a2c4e6'
down_revision = 'c3d9e1f0a2b7'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'note',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('author_name', sa.String(length=120), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('after_seq', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agent.id']),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('note', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_note_conversation_id'), ['conversation_id'], unique=False)
    op.create_table(
        'canned_response',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=True),
        sa.Column('shortcut', sa.String(length=32), nullable=False),
        sa.Column('locale', sa.String(length=16), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agent.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('canned_response', schema=None) as batch_op:
        batch_op.create_index('ix_canned_response_agent_shortcut', ['agent_id', 'shortcut'], unique=False)
    op.create_table(
        'label',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('colour', sa.String(length=7), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'conversation_label',
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('label_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id']),
        sa.ForeignKeyConstraint(['label_id'], ['label.id']),
        sa.PrimaryKeyConstraint('conversation_id', 'label_id'),
    )
    with op.batch_alter_table('conversation_label', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_label_label', ['label_id', 'conversation_id'], unique=False)
    op.create_table(
        'rating',
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id']),
        sa.PrimaryKeyConstraint('conversation_id'),
    )
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_created_at', ['created_at'], unique=False)
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.add_column(sa.Column('csat_enabled', sa.Boolean(), server_default=sa.true(), nullable=False))
    for statement in CREATE[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade():
    for statement in DROP[op.get_bind().dialect.name]:
        op.execute(statement)
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.drop_column('csat_enabled')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_created_at')
    op.drop_table('rating')
    with op.batch_alter_table('conversation_label', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_label_label')
    op.drop_table('conversation_label')
    op.drop_table('label')
    with op.batch_alter_table('canned_response', schema=None) as batch_op:
        batch_op.drop_index('ix_canned_response_agent_shortcut')
    op.drop_table('canned_response')
    with op.batch_alter_table('note', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_note_conversation_id'))
    op.drop_table('note')
