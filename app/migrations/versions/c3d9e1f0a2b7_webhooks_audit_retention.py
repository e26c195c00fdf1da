"""webhooks and their outbox, retention per workstream, API keys

Revision ID: c3d9e1f0a2b7
Revises: b8d2f3a4c5e6
Create Date: 2026-12-01 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3d9e1f0a2b7'
down_revision = 'b8d2f3a4c5e6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'api_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('workstream_ids', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_key')),
        sa.UniqueConstraint('prefix', name=op.f('uq_api_key_prefix')),
    )
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retention_days', sa.Integer(), nullable=True))
    op.create_index('ix_conversation_retention', 'conversation', ['workstream_id', 'status', 'ended_at'], unique=False)
    op.create_table(
        'webhook',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workstream_id', sa.String(length=32), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('events', sa.Text(), nullable=False),
        sa.Column('secret', sa.String(length=100), nullable=False),
        sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('disabled_reason', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['workstream_id'], ['workstream.id'], name=op.f('fk_webhook_workstream_id_workstream')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook')),
    )
    op.create_index(op.f('ix_webhook_workstream_id'), 'webhook', ['workstream_id'], unique=False)
    op.create_table(
        'outbox_webhook',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('webhook_id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.String(length=40), nullable=False),
        sa.Column('event', sa.String(length=40), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('response_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['conversation_id'], ['conversation.id'], name=op.f('fk_outbox_webhook_conversation_id_conversation')
        ),
        sa.ForeignKeyConstraint(['webhook_id'], ['webhook.id'], name=op.f('fk_outbox_webhook_webhook_id_webhook')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_webhook')),
    )
    op.create_index('ix_outbox_webhook_due', 'outbox_webhook', ['status', 'next_attempt_at'], unique=False)
    op.create_index(
        'ix_outbox_webhook_order', 'outbox_webhook', ['webhook_id', 'conversation_id', 'status', 'id'], unique=False
    )


def downgrade():
    op.drop_index('ix_outbox_webhook_order', table_name='outbox_webhook')
    op.drop_index('ix_outbox_webhook_due', table_name='outbox_webhook')
    op.drop_table('outbox_webhook')
    op.drop_index(op.f('ix_webhook_workstream_id'), table_name='webhook')
    op.drop_table('webhook')
    op.drop_index('ix_conversation_retention', table_name='conversation')
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.drop_column('retention_days')
    op.drop_table('api_key')
