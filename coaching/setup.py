"""First-run setup: a one-time code, printed in the server log, lets the person who runs the server
create the first admin from the browser; a stranger who reaches a fresh install cannot."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlmodel import Session, func, select

from coaching import audit
from coaching.errors import PermissionDenied, ValidationError
from coaching.users import create_user
from db.models import AppSetting, User

SETUP_KEY = "setup_code_sha256"


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def has_users(session: Session) -> bool:
    """True once any user exists."""
    return (session.exec(select(func.count()).select_from(User)).one() or 0) > 0


def ensure_setup_code(*, session: Session) -> str | None:
    """With no users, make a fresh one-time code (only its hash is stored) and return it; else None."""
    if has_users(session):
        return None
    code = "-".join(secrets.token_hex(3) for _ in range(3))
    row = session.get(AppSetting, SETUP_KEY) or AppSetting(key=SETUP_KEY, value="")
    row.value = _digest(code)
    session.add(row)
    session.commit()
    return code


def create_first_admin(
    *, session: Session, code: str, username: str, display_name: str, password: str
) -> User:
    """Create the first admin if `code` matches the one printed at start-up; the code then expires."""
    row = session.get(AppSetting, SETUP_KEY)
    if has_users(session) or row is None:
        raise PermissionDenied("Setup is already complete; sign in instead.")
    if not code or not hmac.compare_digest(row.value, _digest(code)):
        raise ValidationError(
            "That setup code is not right. It is printed in the server log at start-up.", field="code"
        )
    user = create_user(
        session=session,
        username=username,
        role="admin",
        display_name=display_name,
        password=password,
        commit=False,
    )
    session.delete(row)
    audit.record(
        session, by=user, action="setup", entity="user", entity_id=user.id, detail={"first_admin": True}
    )
    session.commit()
    return user
