"""Meeting mode: stable anonymous labels for people, and suppression of small cells.

A label comes from a keyed hash (HMAC-SHA256) of the person's id, so the same teacher is "Teacher
QX42" on every rerun and in every meeting, while nobody without the key can map labels back to ids.
The key is kept in the database (app_setting) so every app process uses the same one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

import numpy as np
import pandas as pd
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from coaching import audit
from db.models import AppSetting

SALT_KEY = "meeting_mode_salt"
MIN_OBS = 3
# Which row dimensions name people, and the prefix their anonymous label gets.
PEOPLE_ROWS = {"teacher": "Teacher", "coach": "Coach"}


def meeting_salt(*, session: Session) -> str:
    """The key for anonymous labels, created once (randomly) and shared by every app process."""
    row = session.get(AppSetting, SALT_KEY)
    if row is not None:
        return row.value
    value = secrets.token_hex(16)
    session.add(AppSetting(key=SALT_KEY, value=value))
    audit.record(session, by=None, action="create", entity="app_setting", entity_id=SALT_KEY)
    try:
        session.commit()
    except IntegrityError:  # another process created it first: use theirs
        session.rollback()
        return session.get(AppSetting, SALT_KEY).value
    return value


def label_for(key, prefix: str, salt: str, extra: int = 0) -> str:
    """'Teacher QX42': two letters and two digits from HMAC(salt, prefix:key); `extra` more digits."""
    digest = hmac.new(salt.encode(), f"{prefix}:{key}".encode(), hashlib.sha256).digest()
    n = int.from_bytes(digest[:8], "big")
    letters = string.ascii_uppercase[n % 26] + string.ascii_uppercase[(n // 26) % 26]
    digits = f"{(n // 676) % 100:02d}"
    if extra:
        digits += f"{(n // 67600) % (10**extra):0{extra}d}"
    return f"{prefix} {letters}{digits}"


def anonymise(df: pd.DataFrame, columns: dict[str, tuple[str, str]], salt: str) -> pd.DataFrame:
    """Replace each label column with a stable anonymous label.

    `columns` maps label column -> (prefix, key column), e.g. {"teacher": ("Teacher", "teacher_id")}.
    Two keys that collide on four characters get longer labels, so rows never merge.
    """
    out = df.copy()
    for col, (prefix, key_col) in columns.items():
        keys = list(dict.fromkeys(out[key_col].tolist()))
        mapping: dict = {}
        extra = 0
        while True:
            mapping = {k: label_for(k, prefix, salt, extra) for k in keys}
            if len(set(mapping.values())) == len(mapping) or extra >= 6:
                break
            extra += 1
        out[col] = out[key_col].map(mapping)
    return out


def suppress_small_cells(df: pd.DataFrame, min_obs: int = MIN_OBS) -> pd.DataFrame:
    """Cells built from fewer than `min_obs` observations lose their mean; their text says 'n<3'."""
    out = df.copy()
    small = out["n_obs"] < min_obs
    out["mean"] = out["mean"].astype(object).where(~small, None)
    out["suppressed"] = small
    out["text"] = np.where(small, f"n<{min_obs}", "")
    return out


def meeting_cells(cells: pd.DataFrame, *, rows: str, salt: str) -> pd.DataFrame:
    """A heatmap's cells ready for a projector: people anonymised, small cells suppressed."""
    out = cells
    if rows in PEOPLE_ROWS:
        out = anonymise(out, {"row_label": (PEOPLE_ROWS[rows], "row_key")}, salt)
        # Rows were ordered by real name; an order by anonymous label gives nothing away.
        out = out.sort_values("row_label", kind="stable").reset_index(drop=True)
    return suppress_small_cells(out)


def meeting_observations(obs: pd.DataFrame, *, salt: str) -> pd.DataFrame:
    """A cell's observation list for a projector: teacher and coach anonymised, ids of people dropped."""
    out = anonymise(obs, {"teacher": ("Teacher", "teacher_id"), "observer": ("Coach", "observer_id")}, salt)
    return out.drop(columns=["teacher_id", "observer_id"])


def without_people_ids(cells: pd.DataFrame, *, rows: str) -> pd.DataFrame:
    """Meeting-mode cells for download: a teacher's or coach's database id is dropped with the name."""
    return cells.drop(columns=["row_key"]) if rows in PEOPLE_ROWS else cells
