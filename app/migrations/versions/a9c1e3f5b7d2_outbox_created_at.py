"""the outboxes indexed by created_at, so that pruning them reads only the rows it deletes

Revision ID: a9c1e3f5b7d2
Revises: f2b4d6e8a0c1
Create Date: 2026-12-08 02:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a9c1e3f5b7d2'
down_revision = 'f2b4d6e8a0c1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_email', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_email_created_at', ['created_at'], unique=False)
    with op.batch_alter_table('outbox_webhook', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_webhook_created_at', ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('outbox_webhook', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_webhook_created_at')
    with op.batch_alter_table('outbox_email', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_email_created_at')
