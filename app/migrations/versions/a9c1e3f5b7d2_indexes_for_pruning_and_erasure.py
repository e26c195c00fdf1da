"""indexes for what pruning and erasure look up: the outboxes by created_at and by conversation,
attachments by their uploader, customers by email

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

INDEXES = [
    ('outbox_email', 'ix_outbox_email_created_at', ['created_at']),
    ('outbox_email', 'ix_outbox_email_conversation_id', ['conversation_id']),
    ('outbox_webhook', 'ix_outbox_webhook_created_at', ['created_at']),
    ('outbox_webhook', 'ix_outbox_webhook_conversation_id', ['conversation_id']),
    ('attachment', 'ix_attachment_customer_id', ['customer_id']),
    ('customer', 'ix_customer_email', ['email']),
]


def upgrade():
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    for table, name, _ in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
