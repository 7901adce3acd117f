"""Opening an app page under AppTest as a signed-in user (the app's own navigation and guard)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_page(user_id: int, page: str, **query: str) -> AppTest:
    """Run the app signed in as `user_id`, then switch to `page` with `query` as URL parameters."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["user_id"] = user_id
    at.run()
    at.switch_page(page)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def observation_page(user_id: int, oid: int) -> AppTest:
    """The observation page of observation `oid`."""
    return open_page(user_id, "app_pages/observation.py", id=str(oid))
