"""the agent's workspace: internal notes (never shown to the customer) and canned responses

Revision ID: b3d9f1a2c4e6
Revises: a7c1e2d3f4b5
Create Date: 2026-12-01 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b3d9f1a2c4e6'
down_revision = 'a7c1e2d3f4b5'
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


def downgrade():
    with op.batch_alter_table('canned_response', schema=None) as batch_op:
        batch_op.drop_index('ix_canned_response_agent_shortcut')
    op.drop_table('canned_response')
    with op.batch_alter_table('note', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_note_conversation_id'))
    op.drop_table('note')
