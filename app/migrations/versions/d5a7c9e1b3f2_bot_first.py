"""a workstream's bot answers first: its name, webhook, API key and answer time; the conversation's
`bot` status (one current conversation per customer includes it) and the bot's answer deadline

Revision ID: d5a7c9e1b3f2
Revises: b3d9f1a2c4e6
Create Date: 2026-12-02 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd5a7c9e1b3f2'
down_revision = 'b3d9f1a2c4e6'
branch_labels = None
depends_on = None

CURRENT_BEFORE = "status IN ('open', 'active', 'waiting')"
CURRENT_AFTER = "status IN ('open', 'active', 'waiting', 'bot')"


def _current_index(batch_op, where: str) -> None:
    batch_op.create_index(
        'uq_conversation_current',
        ['customer_id', 'workstream_id'],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade():
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bot_name', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('bot_webhook_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('bot_api_key_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('bot_answer_seconds', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_workstream_bot_webhook_id_webhook'), 'webhook', ['bot_webhook_id'], ['id']
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_workstream_bot_api_key_id_api_key'), 'api_key', ['bot_api_key_id'], ['id']
        )
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bot_answer_due_at', sa.DateTime(), nullable=True))
        batch_op.drop_index('uq_conversation_current')
        _current_index(batch_op, CURRENT_AFTER)


def downgrade():
    # Conversations still with a bot go to the queue: the older schema has no such status.
    op.execute("UPDATE conversation SET status = 'open' WHERE status = 'bot'")
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index('uq_conversation_current')
        _current_index(batch_op, CURRENT_BEFORE)
        batch_op.drop_column('bot_answer_due_at')
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_workstream_bot_api_key_id_api_key'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_workstream_bot_webhook_id_webhook'), type_='foreignkey')
        batch_op.drop_column('bot_answer_seconds')
        batch_op.drop_column('bot_api_key_id')
        batch_op.drop_column('bot_webhook_id')
        batch_op.drop_column('bot_name')
