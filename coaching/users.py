"""User accounts: creation, password hashing and checking, sign-in bookkeeping (failed attempts,
lockout) and a user's own password change. Admin actions on other accounts live in coaching/admin.py."""

from __future__ import annotations

import functools
import logging
import secrets
import string
from datetime import UTC, datetime

import bcrypt
from sqlalchemy import func, update
from sqlmodel import Session, select

from coaching import audit
from coaching.errors import CoachloopError, PermissionDenied, ValidationError
from db.models import ROLES, AppSetting, School, User, UserSchool

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
MAX_FAILED_LOGINS = 5  # failures in a row before the account locks until an admin unlocks it
MAX_USERNAME_LENGTH = 64
# A safe set: it reads the same in a URL, a shell, a CSV and the audit log. It covers the demo's
# "demo-coach1", bulk teacher logins ("maria.lopez2"), "deleted-12" and e-mail-style names.
USERNAME_CHARS = "letters a-z, digits and . _ - @"
_USERNAME_ALLOWED = frozenset(string.ascii_lowercase + string.digits + "._-@")


class LoginRefused(PermissionDenied):
    """The sign-in did not succeed; the message is safe to show on the login page."""


class AccountLocked(LoginRefused):
    """The account is locked after too many failed attempts (or by an admin)."""


BAD_CREDENTIALS = "Username or password is incorrect."
LOCKED_MESSAGE = "This account is locked after too many failed sign-in attempts. Ask an admin to unlock it."


def hash_password(password: str, *, rounds: int = 12) -> str:
    """bcrypt hash of `password` (`rounds` lower only for long random one-time passwords)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


@functools.cache
def _decoy_hash() -> bytes:
    return hash_password(secrets.token_urlsafe(16)).encode()


def spend_a_password_check() -> None:
    """Spend the time of one bcrypt check (at the default cost) against a decoy hash. Called when a
    sign-in names no active account, so that the reply takes as long as a wrong password for a
    real one and response times do not tell which usernames exist."""
    bcrypt.checkpw(b"not-a-password", _decoy_hash())


def prepare_password_decoy() -> None:
    """Make the decoy hash now (once per process), so the first unknown name is not slower."""
    _decoy_hash()


def check_password(password: str, hashed: str | None) -> bool:
    """True when `password` matches the bcrypt `hashed` value."""
    if not hashed:
        return False
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


def generate_password() -> str:
    """A random password that is easy to read out once."""
    return secrets.token_urlsafe(12)


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive (the login widget lower-cases what is typed): store lower case."""
    return (username or "").strip().lower()


def validate_username(username: str) -> None:
    """Raise ValidationError unless the (normalised) username is 1-64 of a-z 0-9 . _ - @, starting
    with a letter or digit. Checked when an account is created; existing names are not re-checked."""
    if not username:
        raise ValidationError("The username is empty.", field="username")
    if len(username) > MAX_USERNAME_LENGTH:
        raise ValidationError(
            f"The username is too long: at most {MAX_USERNAME_LENGTH} characters.", field="username"
        )
    bad = sorted({ch for ch in username if ch not in _USERNAME_ALLOWED})
    if bad:
        shown = ", ".join("a space" if ch == " " else repr(ch) for ch in bad)
        raise ValidationError(
            f"The username cannot contain {shown}. Use only {USERNAME_CHARS}.", field="username"
        )
    if not username[0].isalnum():
        raise ValidationError("The username must start with a letter or a digit.", field="username")


def validate_password(password: str) -> None:
    """Raise ValidationError for an empty or too-short password."""
    if not password or not password.strip():
        raise ValidationError("The password is empty.", field="password")
    if "\x00" in password:
        raise ValidationError("The password contains an invisible NUL character.", field="password")
    if password != password.strip():
        # The login widget strips what is typed, so such a password could never be entered.
        raise ValidationError("The password cannot start or end with a space.", field="password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )


def create_user(
    *,
    session: Session,
    username: str,
    role: str,
    display_name: str,
    password: str,
    email: str = "",
    school_ids: list[int] | None = None,
    by: User | None = None,
    is_demo: bool = False,
    password_hash: str | None = None,
    commit: bool = True,
    must_change_password: bool = False,
) -> User:
    """Create a user (validated; audited). `password_hash` lets seeds reuse one bcrypt hash."""
    username = normalise_username(username)
    if not username:
        raise ValidationError("The username is empty.", field="username")
    for name, value in (("username", username), ("display_name", display_name), ("email", email)):
        if any(ord(ch) < 32 for ch in value or ""):
            raise ValidationError(f"The {name.replace('_', ' ')} contains a control character.", field=name)
    validate_username(username)
    if role not in ROLES:
        raise ValidationError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.", field="role")
    if not (display_name or "").strip():
        raise ValidationError("The display name is empty.", field="display_name")
    if password_hash is None:
        validate_password(password)
        password_hash = hash_password(password)
    if find_user(session, username) is not None:
        raise ValidationError(f"The username {username!r} is already taken.", field="username")
    user = User(
        username=username,
        role=role,
        display_name=display_name.strip(),
        email=email.strip(),
        password_hash=password_hash,
        is_demo=is_demo,
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    for sid in school_ids or []:
        if session.get(School, sid) is None:
            raise ValidationError(f"School {sid} does not exist.", field="school_ids")
        session.add(UserSchool(user_id=user.id, school_id=sid))
    audit.record(
        session,
        by=by,
        action="create",
        entity="user",
        entity_id=user.id,
        detail={"username": username, "role": role, "schools": school_ids or []},
    )
    if commit:
        session.commit()
    return user


def _revocation_key(user_id: int) -> str:
    return f"cookies_valid_after:{user_id}"


def revoke_cookies(session: Session, user_id: int) -> None:
    """Make every login cookie issued to this user until now invalid (after a password change or
    reset, a stolen cookie stops working). Added to the session; the caller commits."""
    row = session.get(AppSetting, _revocation_key(user_id)) or AppSetting(
        key=_revocation_key(user_id), value=""
    )
    row.value = str(int(datetime.now(UTC).timestamp()))
    session.add(row)


def cookies_valid_after(session: Session, user_id: int) -> float:
    """The Unix time before which this user's login cookies are void (0: none revoked)."""
    row = session.get(AppSetting, _revocation_key(user_id))
    return float(row.value) if row is not None and row.value else 0.0


def find_user(session: Session, username: str) -> User | None:
    """The user with this username (case-insensitive), or None."""
    name = normalise_username(username)
    if not name:
        return None
    return session.exec(select(User).where(func.lower(User.username) == name)).first()


def record_failed_login(*, session: Session, username: str) -> User | None:
    """Count one failed sign-in for `username` (atomically, so parallel attempts all count); lock the
    account at MAX_FAILED_LOGINS in a row. Audited. Returns the user, or None for an unknown name."""
    user = find_user(session, username)
    if user is None:
        return None
    session.execute(update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1))
    session.refresh(user)
    newly_locked = not user.locked and user.failed_logins >= MAX_FAILED_LOGINS
    if newly_locked:
        user.locked = True
        session.add(user)
    audit.record(
        session,
        by=user,
        action="login_failed",
        entity="user",
        entity_id=user.id,
        detail={"failed_logins": user.failed_logins},
    )
    if newly_locked:
        audit.record(
            session,
            by=user,
            action="lockout",
            entity="user",
            entity_id=user.id,
            detail={"failed_logins": user.failed_logins},
        )
        log.warning("Account %s locked after %d failed sign-in attempts", user.id, user.failed_logins)
    session.commit()
    return user


def complete_login(*, session: Session, username: str) -> User:
    """After the password was verified: refuse locked or deactivated accounts (LoginRefused), else reset
    the failed-attempt counter, audit the sign-in and return the user."""
    user = find_user(session, username)
    if user is None or not user.active or not user.password_hash:
        raise LoginRefused(BAD_CREDENTIALS)
    if user.locked:
        audit.record(
            session,
            by=user,
            action="login_refused",
            entity="user",
            entity_id=user.id,
            detail={"reason": "locked"},
        )
        session.commit()
        raise AccountLocked(LOCKED_MESSAGE)
    user.failed_logins = 0
    session.add(user)
    audit.record(session, by=user, action="login", entity="user", entity_id=user.id)
    session.commit()
    return user


def authenticate(*, session: Session, username: str, password: str) -> User:
    """Check a username and password against the database with lockout; LoginRefused if it fails.
    (The app's login form checks the password with streamlit-authenticator, then calls
    `record_failed_login` / `complete_login` exactly as this does.)"""
    user = find_user(session, username)
    if user is None or not user.active:
        raise LoginRefused(BAD_CREDENTIALS)
    if user.locked:
        raise AccountLocked(LOCKED_MESSAGE)
    if not check_password(password.strip(), user.password_hash):
        user = record_failed_login(session=session, username=username)
        if user is not None and user.locked:
            raise AccountLocked(LOCKED_MESSAGE)
        raise LoginRefused(BAD_CREDENTIALS)
    return complete_login(session=session, username=username)


def record_logout(*, session: Session, user: User) -> None:
    """Audit a sign-out."""
    audit.record(session, by=user, action="logout", entity="user", entity_id=user.id)
    session.commit()


def change_own_password(*, session: Session, user: User, current: str, new: str) -> User:
    """A signed-in user changes their own password: the current one is required. Audited."""
    fresh = session.get(User, user.id)
    if fresh is None or not fresh.active:
        raise PermissionDenied("Please sign in.")
    if not check_password(current, fresh.password_hash):
        raise ValidationError("The current password is not right.", field="current")
    validate_password(new)
    if new == current:
        raise ValidationError("The new password must differ from the current one.", field="new")
    fresh.password_hash = hash_password(new)
    fresh.must_change_password = False
    session.add(fresh)
    revoke_cookies(session, fresh.id)
    audit.record(session, by=fresh, action="change_password", entity="user", entity_id=fresh.id)
    session.commit()
    return fresh


def set_password_on_server(*, session: Session, username: str, password: str) -> User:
    """The server operator's way back in (`python -m coaching set-password`): give an existing
    account a new password, unlock it, and revoke its cookies. Audited as done on the server."""
    validate_password(password)
    user = find_user(session, username)
    if user is None:
        raise ValidationError(f"No user is called {username!r}.", field="username")
    user.password_hash = hash_password(password)
    user.must_change_password = False
    user.failed_logins = 0
    user.locked = False
    session.add(user)
    revoke_cookies(session, user.id)
    audit.record(
        session,
        by=None,
        action="reset_password",
        entity="user",
        entity_id=user.id,
        detail={"via": "command line"},
    )
    session.commit()
    return user


__all__ = [
    "AccountLocked",
    "CoachloopError",
    "LoginRefused",
    "MAX_FAILED_LOGINS",
    "authenticate",
    "change_own_password",
    "check_password",
    "complete_login",
    "create_user",
    "find_user",
    "generate_password",
    "hash_password",
    "record_failed_login",
    "record_logout",
    "revoke_cookies",
    "set_password_on_server",
    "validate_password",
    "validate_username",
]


def acting_user(session: Session, username: str | None) -> User:
    """The active user a CLI command acts as: `username`, or the first active admin."""
    stmt = select(User).where(User.active == True)  # noqa: E712
    stmt = stmt.where(User.username == username) if username else stmt.where(User.role == "admin")
    user = session.exec(stmt.order_by(User.id)).first()
    if user is None:
        raise ValidationError(
            f"No active user {username!r}."
            if username
            else "No admin account exists; create one with create-user."
        )
    return user
