"""Storage: every table (imported here so metadata is always complete), the engine and migrations."""

from db import models  # noqa: F401  (registers every table on SQLModel.metadata)
from db.engine import get_engine, get_session, reset_engine

__all__ = ["models", "get_engine", "get_session", "reset_engine"]
