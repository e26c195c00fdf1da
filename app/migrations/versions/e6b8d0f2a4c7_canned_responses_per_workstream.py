"""canned responses for one workstream

Revision ID: e6b8d0f2a4c7
Revises: d5a7c9e1b3f2
Create Date: 2026-12-08 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e6b8d0f2a4c7'
down_revision = 'd5a7c9e1b3f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('canned_response', schema=None) as batch_op:
        batch_op.add_column(sa.Column('workstream_id', sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_canned_response_workstream_id_workstream'), 'workstream', ['workstream_id'], ['id']
        )


def downgrade():
    with op.batch_alter_table('canned_response', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_canned_response_workstream_id_workstream'), type_='foreignkey')
        batch_op.drop_column('workstream_id')
