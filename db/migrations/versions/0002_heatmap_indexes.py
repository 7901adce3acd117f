"""heatmap covering indexes carry the month

Every heatmap aggregate is one GROUP BY <dimension>, domain_code over domain_score, filtered to a
window of months. With `month` inside the covering indexes the window is answered from the index
alone (SQLite and PostgreSQL index-only scans); without it every aggregate read the table
(2-3.5 s at district scale instead of ~0.1 s). The teacher index within a school serves a leader's
or coach's teacher x domain view.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 03:08:00
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0002'
down_revision: Union[str, None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

DIMENSIONS = {
    'ix_score_school_domain': 'school_id',
    'ix_score_block_domain': 'block_id',
    'ix_score_teacher_domain': 'teacher_id',
    'ix_score_observer_domain': 'observer_id',
    'ix_score_grade_domain': 'grade_band',
}


def upgrade() -> None:
    for name, column in DIMENSIONS.items():
        op.drop_index(name, table_name='domain_score')
        op.create_index(name, 'domain_score', [column, 'domain_code', 'month', 'score'], unique=False)
    op.create_index(
        'ix_score_school_teacher_domain',
        'domain_score',
        ['school_id', 'teacher_id', 'domain_code', 'month', 'score'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index('ix_score_school_teacher_domain', table_name='domain_score')
    for name, column in DIMENSIONS.items():
        op.drop_index(name, table_name='domain_score')
        op.create_index(name, 'domain_score', [column, 'domain_code', 'score'], unique=False)
