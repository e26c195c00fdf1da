"""read state and email notifications: the customer's read position, the email claim, workstream and
agent settings, unsubscribes and the email outbox

Revision ID: b8d2f0c4e6a1
Revises: b3d9f0a1c2e4
Create Date: 2026-12-01 22:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b8d2f0c4e6a1'
down_revision = 'b3d9f0a1c2e4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_email_after_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('notify_return_url', sa.Text(), nullable=True))
    # Persistent workstreams default to 10 minutes (live ones to off); nothing is sent without SMTP_URL.
    op.execute("UPDATE workstream SET notify_email_after_minutes = 10 WHERE mode = 'persistent'")
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))
    with op.batch_alter_table('agent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_email', sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_read_seq', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('customer_read_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('notify_due_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('emailed_seq', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('email_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('emailed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('email_error', sa.String(length=500), nullable=True))
        batch_op.create_index('ix_conversation_notify_due_at', ['notify_due_at'], unique=False)
    # Reads were not stored before: count what already exists as read, rather than as one big unread pile.
    op.execute("UPDATE conversation SET customer_read_seq = last_seq")
    op.create_table(
        'email_opt_out',
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('workstream_id', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_email_opt_out_customer_id_customer')),
        sa.ForeignKeyConstraint(
            ['workstream_id'], ['workstream.id'], name=op.f('fk_email_opt_out_workstream_id_workstream')
        ),
        sa.PrimaryKeyConstraint('customer_id', 'workstream_id', name=op.f('pk_email_opt_out')),
    )
    op.create_table(
        'outbox_email',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.Column('agent_id', sa.Integer(), nullable=True),
        sa.Column('recipient', sa.String(length=254), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], name=op.f('fk_outbox_email_agent_id_agent')),
        sa.ForeignKeyConstraint(
            ['conversation_id'], ['conversation.id'], name=op.f('fk_outbox_email_conversation_id_conversation')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_email')),
    )
    op.create_index('ix_outbox_email_due', 'outbox_email', ['status', 'next_attempt_at'], unique=False)


def downgrade():
    op.drop_index('ix_outbox_email_due', table_name='outbox_email')
    op.drop_table('outbox_email')
    op.drop_table('email_opt_out')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_notify_due_at')
        batch_op.drop_column('email_error')
        batch_op.drop_column('emailed_at')
        batch_op.drop_column('email_status')
        batch_op.drop_column('emailed_seq')
        batch_op.drop_column('notify_due_at')
        batch_op.drop_column('customer_read_at')
        batch_op.drop_column('customer_read_seq')
    with op.batch_alter_table('agent', schema=None) as batch_op:
        batch_op.drop_column('notify_email')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('email')
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.drop_column('notify_email_after_minutes')
        batch_op.drop_column('notify_return_url')
