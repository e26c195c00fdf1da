"""conversation versions for the console's snapshot and live frames, and an index for an agent's
recently ended conversations

Revision ID: d5a7c9e1f3b2
Revises: e6b8d0f2a4c7
Create Date: 2026-12-02 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd5a7c9e1f3b2'
down_revision = 'e6b8d0f2a4c7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index('ix_conversation_agent_ended', ['agent_id', 'ended_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_agent_ended')
        batch_op.drop_column('version')
