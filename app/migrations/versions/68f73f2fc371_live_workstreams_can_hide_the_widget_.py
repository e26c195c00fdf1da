"""live workstreams can hide the widget outside hours

Revision ID: 68f73f2fc371
Revises: 4e4f4595cf99
Create Date: 2026-11-23 21:19:14.760784

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '68f73f2fc371'
down_revision = '4e4f4595cf99'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hide_when_closed', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.drop_column('hide_when_closed')
