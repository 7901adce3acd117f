"""The full export as one zip download, and restoring such a zip (admin page).

Wraps `coaching.exchange` (one CSV per table + data dictionary) with a temporary folder. A zip is
read defensively: only flat *.csv / *.md members, bounded sizes, no paths outside the folder.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from sqlmodel import Session

from coaching import access, audit, exchange
from coaching.errors import ValidationError
from db.models import User

log = logging.getLogger(__name__)
MAX_MEMBERS = 200
MAX_UNPACKED_BYTES = 2 * 1024**3  # a district's full history is well under this


def export_zip(*, session: Session, user: User, with_credentials: bool = False) -> bytes:
    """Every table as CSV plus data_dictionary.md, zipped (admin). The page never asks for password
    hashes (issue 6: none in a download); `with_credentials` serves server-side backups and tests."""
    access.require_role(user, "admin")
    with tempfile.TemporaryDirectory(prefix="coachloop-export-") as tmp:
        paths = exchange.export_dir(session=session, out_dir=Path(tmp), with_credentials=with_credentials)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(paths):
                zf.write(path, arcname=path.name)
    audit.record(
        session,
        by=user,
        action="export",
        entity="database",
        detail={"files": len(paths), "with_credentials": with_credentials, "bytes": buf.tell()},
    )
    session.commit()
    return buf.getvalue()


def _unpack(data: bytes, folder: Path) -> list[str]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ValidationError("That file is not a zip archive; upload the zip the export produced.") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_MEMBERS:
            raise ValidationError("The zip holds too many files to be a Coachloop export.")
        if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
            raise ValidationError(
                "The zip unpacks to more than 2 GB; restore it with the command line instead."
            )
        names = []
        for m in members:
            # Flatten: an export zipped by hand may sit in one folder; never write outside `folder`.
            name = PurePosixPath(m.filename.replace("\\", "/")).name
            if not name.endswith((".csv", ".md")) or name.startswith("."):
                continue
            if name in names:
                raise ValidationError(f"The zip holds two files named {name}.")
            (folder / name).write_bytes(zf.read(m))
            names.append(name)
    return names


def _has_admin_password(folder: Path) -> bool:
    users = folder / exchange.FILES["app_user"]
    with users.open(newline="", encoding="utf-8") as fh:
        return any(
            row.get("role") == "admin"
            and row.get("password_hash")
            and row.get("active", "true").lower() != "false"
            for row in csv.DictReader(fh)
        )


def restore_zip(*, session: Session, user: User, data: bytes, replace: bool = False) -> dict[str, int]:
    """Restore an export zip (admin), in one transaction. Without `replace` the database must be
    empty; with it, everything here is replaced by the zip, which must carry an admin's password
    hash (an export made with credentials) so that someone can still sign in afterwards."""
    access.require_role(user, "admin")
    who = {"user_id": user.id, "username": user.username}
    with tempfile.TemporaryDirectory(prefix="coachloop-restore-") as tmp:
        folder = Path(tmp)
        names = _unpack(data, folder)
        needed = {exchange.FILES["app_user"], exchange.FILES["observation"]}
        if not needed <= set(names):
            raise ValidationError(
                "This zip is not a Coachloop export: users.csv and observations.csv are missing."
            )
        if replace:
            if not _has_admin_password(folder):
                raise ValidationError(
                    "This export has no admin password hash, so nobody could sign in after replacing "
                    "the database. Use a server backup (`python -m coaching export --with-credentials`"
                    ", zipped), or restore into an empty database."
                )
            # Same transaction as the load: if the restore fails, the rollback brings the data back.
            exchange.wipe_all(session=session)
        loaded = exchange.restore_dir(session=session, in_dir=folder)
    audit.record(
        session,
        by=None,
        action="restore",
        entity="database",
        detail={"source": "zip upload", "replace": replace, "by": who, "rows": sum(loaded.values())},
    )
    session.commit()
    log.info("Restored a zip (%s rows, replace=%s) by %s", sum(loaded.values()), replace, user.username)
    return loaded
