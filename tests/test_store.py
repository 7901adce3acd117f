"""The store: migrations up and down on both databases, connection settings."""

from sqlalchemy import inspect, text

from db.engine import get_engine
from db.migrate import downgrade, upgrade


def test_migrations_create_every_table_and_downgrade_removes_them(database_url):
    engine = get_engine()
    tables = set(inspect(engine).get_table_names())
    assert {
        "school",
        "teacher",
        "app_user",
        "observation",
        "domain_score",
        "action_step",
        "revisit",
        "audit_log",
    } <= tables
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "observation" in set(inspect(engine).get_table_names())


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(sqlite_url):
    with get_engine().connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
