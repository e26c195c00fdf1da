"""status events indexed by (to_status, created_at), for the queue's recent assignments, and by
(conversation_id, to_status) for a conversation's

Revision ID: c5e7a9b1d3f4
Revises: a9c1e3f5b7d2
Create Date: 2026-12-08 03:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c5e7a9b1d3f4'
down_revision = 'a9c1e3f5b7d2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversation_event', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_event_conversation_id')
        batch_op.create_index(
            'ix_conversation_event_conversation_id_to_status', ['conversation_id', 'to_status'], unique=False
        )
        batch_op.create_index('ix_conversation_event_to_status_created_at', ['to_status', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('conversation_event', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_event_to_status_created_at')
        batch_op.drop_index('ix_conversation_event_conversation_id_to_status')
        batch_op.create_index('ix_conversation_event_conversation_id', ['conversation_id'], unique=False)
