"""Demo data generator (placeholder until the foundation issue's generator lands)."""


def seed_demo_if_empty(*, session) -> bool:
    """Load the demo when the database has no observations; return True if it loaded."""
    return False
