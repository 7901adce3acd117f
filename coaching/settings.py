"""One settings object for every environment variable Coachloop reads."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SQLITE_PATH = ROOT / "data" / "coachloop.db"


class Settings(BaseSettings):
    """Environment-driven configuration; usable outside Streamlit (CLI, tests, benchmarks)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    database_url: str = Field(default="", alias="DATABASE_URL")
    demo: bool = Field(default=False, alias="COACHLOOP_DEMO")
    cookie_key: str = Field(default="", alias="COACHLOOP_COOKIE_KEY")
    cookie_name: str = Field(default="coachloop_auth", alias="COACHLOOP_COOKIE_NAME")
    cookie_expiry_days: float = Field(default=7.0, alias="COACHLOOP_COOKIE_EXPIRY_DAYS")
    openai_api_key: str = Field(default="", alias="OPENAI_API_KEY")
    openai_base_url: str = Field(default="", alias="OPENAI_BASE_URL")
    llm_model: str = Field(default="gpt-4o-mini", alias="COACHLOOP_LLM_MODEL")
    llm_timeout_s: float = Field(default=20.0, alias="COACHLOOP_LLM_TIMEOUT")
    llm_deadline_s: float = Field(default=90.0, gt=0, alias="COACHLOOP_LLM_DEADLINE")
    llm_max_retries: int = Field(default=1, alias="COACHLOOP_LLM_RETRIES")
    notes_in_prompts: bool = Field(default=True, alias="COACHLOOP_NOTES_IN_PROMPTS")
    school_timezone: str = Field(default="America/Los_Angeles", alias="COACHLOOP_TIMEZONE")
    school_year_start_month: int = Field(default=8, ge=1, le=12, alias="COACHLOOP_YEAR_START_MONTH")
    open_step_cap: int = Field(default=3, ge=1, alias="COACHLOOP_OPEN_STEP_CAP")
    due_days: int = Field(default=14, ge=1, alias="COACHLOOP_DUE_DAYS")
    overdue_days: int = Field(default=28, ge=1, alias="COACHLOOP_OVERDUE_DAYS")
    check_back_days: int = Field(default=14, ge=1, alias="COACHLOOP_CHECK_BACK_DAYS")
    edit_window_hours: int = Field(default=24, ge=0, alias="COACHLOOP_EDIT_WINDOW_HOURS")
    live_refresh_s: int = Field(default=15, ge=2, alias="COACHLOOP_LIVE_REFRESH")

    @field_validator("cookie_key")
    @classmethod
    def _cookie_key_strong(cls, value: str) -> str:
        if value and len(value.encode()) < 32:
            raise ValueError("COACHLOOP_COOKIE_KEY must be at least 32 bytes long")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL: DATABASE_URL, or SQLite at data/coachloop.db."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite:///{DEFAULT_SQLITE_PATH}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
