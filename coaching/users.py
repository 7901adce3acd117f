"""User accounts: creation, password hashing and checking."""

from __future__ import annotations

import secrets

import bcrypt
from sqlmodel import Session, select

from coaching import audit
from coaching.errors import ValidationError
from db.models import ROLES, School, User, UserSchool

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """bcrypt hash of `password`."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12)).decode()


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


def validate_password(password: str) -> None:
    """Raise ValidationError for an empty or too-short password."""
    if not password or not password.strip():
        raise ValidationError("The password is empty.", field="password")
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
) -> User:
    """Create a user (validated; audited). `password_hash` lets seeds reuse one bcrypt hash."""
    username = (username or "").strip()
    if not username:
        raise ValidationError("The username is empty.", field="username")
    if role not in ROLES:
        raise ValidationError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.", field="role")
    if not (display_name or "").strip():
        raise ValidationError("The display name is empty.", field="display_name")
    if password_hash is None:
        validate_password(password)
        password_hash = hash_password(password)
    if session.exec(select(User).where(User.username == username)).first():
        raise ValidationError(f"The username {username!r} is already taken.", field="username")
    user = User(
        username=username,
        role=role,
        display_name=display_name.strip(),
        email=email.strip(),
        password_hash=password_hash,
        is_demo=is_demo,
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
