"""The audit log: every create/update/delete with who, what and when."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from db.models import AuditLog, User

SECRET_KEYS = {"password", "password_hash", "cookie_key", "api_key", "openai_api_key", "setup_code"}


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<redacted>" if k in SECRET_KEYS else _clean(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def record(
    session: Session,
    *,
    by: User | None,
    action: str,
    entity: str,
    entity_id: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit row to the session (committed with the change it describes); secrets are redacted."""
    row = AuditLog(
        user_id=by.id if by else None,
        username=by.username if by else "system",
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        detail=json.dumps(_clean(detail or {}), default=str, sort_keys=True),
    )
    session.add(row)
    return row


def changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"old": ..., "new": ...}} for the fields whose values differ."""
    return {k: {"old": old.get(k), "new": new.get(k)} for k in new if old.get(k) != new.get(k)}
