"""Domain exceptions, with messages a coach understands; pages turn them into st.error."""


class CoachloopError(Exception):
    """Base class of every error the domain layer raises on purpose."""


class ConfigError(CoachloopError):
    """The configuration (environment, DATABASE_URL, secrets) is unusable."""


class ValidationError(CoachloopError):
    """Input that cannot be saved; the message says what to fix."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFound(CoachloopError):
    """The record does not exist (or the user may not see it)."""


class PermissionDenied(CoachloopError):
    """The signed-in user may not do this."""


class StepCapReached(CoachloopError):
    """Assigning another step would exceed the teacher's open-step cap."""

    def __init__(self, message: str, open_step_ids: list[int] | None = None):
        super().__init__(message)
        self.open_step_ids = open_step_ids or []


class DatabaseUnavailable(CoachloopError):
    """The database cannot be reached or opened."""
