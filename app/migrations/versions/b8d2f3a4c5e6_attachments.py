"""attachments: stored files, their message and conversation, per-workstream limits

Revision ID: b8d2f3a4c5e6
Revises: c4e8a2b6d1f0
Create Date: 2026-12-01 22:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b8d2f3a4c5e6'
down_revision = 'c4e8a2b6d1f0'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachment_limits', sa.Text(), nullable=True))
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachment_count', sa.Integer(), server_default='0', nullable=False))
    op.create_table(
        'attachment',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('workstream_id', sa.String(length=32), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('agent_id', sa.Integer(), nullable=True),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=127), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('has_thumbnail', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], name=op.f('fk_attachment_agent_id_agent')),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_attachment_conversation_id_conversation')),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_attachment_customer_id_customer')),
        sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_attachment_message_id_message')),
        sa.ForeignKeyConstraint(['workstream_id'], ['workstream.id'], name=op.f('fk_attachment_workstream_id_workstream')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_attachment')),
    )
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_message_id'), ['message_id'], unique=False)


def downgrade():
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachment_message_id'))
        batch_op.drop_index(batch_op.f('ix_attachment_conversation_id'))
    op.drop_table('attachment')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('attachment_count')
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.drop_column('attachment_limits')
