"""The signing key of the login cookie, and the cookie's token (the format streamlit-authenticator
0.4.2 writes: an HS256 JWT holding the username and an expiry timestamp).

Where the key comes from, first match wins: COACHLOOP_COOKIE_KEY, the `COACHLOOP_COOKIE_KEY` (or
`cookie_key`) entry of .streamlit/secrets.toml (read by the UI and passed in), else a strong key that
the first process generates and stores in the database, so every app process signs and accepts the
same cookies. A key shorter than 32 bytes is refused.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

import jwt
import pydantic
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from coaching.errors import ConfigError
from coaching.settings import get_settings
from coaching.users import cookies_valid_after, find_user
from db.models import AppSetting, User

log = logging.getLogger(__name__)

COOKIE_KEY_SETTING = "cookie_key"
MIN_KEY_BYTES = 32
_ALGORITHM = "HS256"


def check_key(key: str, source: str) -> str:
    """Return `key` if it is long enough; ConfigError (naming where it came from) otherwise."""
    if len(key.encode()) < MIN_KEY_BYTES:
        raise ConfigError(
            f"The cookie key from {source} is {len(key.encode())} bytes long; it must be at least "
            f'{MIN_KEY_BYTES} bytes. Generate one with: python -c "import secrets; '
            f'print(secrets.token_urlsafe(48))"'
        )
    return key


def _stored_key(session: Session) -> str:
    row = session.get(AppSetting, COOKIE_KEY_SETTING)
    if row is not None:
        return row.value
    candidate = secrets.token_urlsafe(48)
    try:
        # Insert-if-absent: when several processes start at once, exactly one insert wins and the
        # others read the winner's key, so all of them accept the same cookies.
        session.add(AppSetting(key=COOKIE_KEY_SETTING, value=candidate))
        session.commit()
    except IntegrityError:
        session.rollback()
        row = session.get(AppSetting, COOKIE_KEY_SETTING, populate_existing=True)
        if row is None:  # pragma: no cover - the conflicting row vanished again
            raise ConfigError("Could not store the cookie key in the database; try again.") from None
        return row.value
    log.warning(
        "No COACHLOOP_COOKIE_KEY was set: generated a cookie signing key and stored it in the "
        "database (app_setting '%s'); every app process now uses it.",
        COOKIE_KEY_SETTING,
    )
    return candidate


def cookie_key(*, session: Session, secret_value: str | None = None) -> str:
    """The cookie signing key: environment, then secrets.toml (`secret_value`), then the database
    (generated once). ConfigError for a key shorter than 32 bytes."""
    try:
        env_value = get_settings().cookie_key
    except pydantic.ValidationError as exc:
        problems = "; ".join(err["msg"] for err in exc.errors())
        raise ConfigError(f"The configuration is not usable: {problems}") from None
    if env_value:
        return check_key(env_value, "COACHLOOP_COOKIE_KEY")
    if secret_value:
        return check_key(str(secret_value), ".streamlit/secrets.toml")
    return check_key(_stored_key(session), "the database")


def make_token(username: str, key: str, *, expiry_days: float, now: datetime | None = None) -> str:
    """A cookie token for `username` in streamlit-authenticator's format (used by tests and tools)."""
    now = now or datetime.now()
    exp = (now + timedelta(days=expiry_days)).timestamp()
    return jwt.encode({"username": username, "exp_date": exp}, key, algorithm=_ALGORITHM)


def username_from_token(token: str | None, key: str, *, now: datetime | None = None) -> str | None:
    """The username in a valid, unexpired cookie token; None for anything else."""
    if not token:
        return None
    try:
        payload = jwt.decode(token, key, algorithms=[_ALGORITHM])
    except jwt.PyJWTError:
        return None
    username = payload.get("username") if isinstance(payload, dict) else None
    exp = payload.get("exp_date") if isinstance(payload, dict) else None
    if not isinstance(username, str) or not isinstance(exp, (int, float)):
        return None
    if exp <= (now or datetime.now()).timestamp():
        return None
    return username


def user_for_token(
    *, session: Session, token: str | None, key: str, expiry_days: float | None = None
) -> User | None:
    """The active, unlocked user a valid cookie token names (for restoring a session on reload);
    None for a token issued before the user's password last changed."""
    username = username_from_token(token, key)
    if username is None:
        return None
    user = find_user(session, username)
    if user is None or not user.active or user.locked or not user.password_hash:
        return None
    valid_after = cookies_valid_after(session, user.id)
    if valid_after:
        days = get_settings().cookie_expiry_days if expiry_days is None else expiry_days
        # The token carries only its expiry; it was issued `days` before that.
        issued = jwt.decode(token, key, algorithms=[_ALGORITHM])["exp_date"] - days * 86400
        if issued < valid_after - 1:
            return None
    return user
