"""Reference data every Coachloop database starts with: the default rubric, its instructional
blocks and the action-step library. Seeding is idempotent: running it again creates nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml
from sqlmodel import Session, select

from db.models import Block, Domain, LibraryStep, RubricVersion

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
RUBRIC_FILE = HERE / "rubric.yaml"
LIBRARY_FILE = HERE / "library.yaml"


def load_rubric_yaml() -> dict:
    """The default rubric (version, name, scale, domains, blocks) as read from rubric.yaml."""
    with RUBRIC_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_library_yaml() -> list[dict]:
    """The action-step library (code, domain, title, move, look_for) as read from library.yaml."""
    with LIBRARY_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def seed_rubric(*, session: Session) -> RubricVersion:
    """Create the default rubric, its domains and blocks unless a rubric exists; return the
    current rubric version. Flushes but does not commit."""
    existing = session.exec(select(RubricVersion).where(RubricVersion.is_current == True)).first()  # noqa: E712
    if existing is None:
        existing = session.exec(select(RubricVersion).order_by(RubricVersion.version.desc())).first()
    if existing is not None:
        return existing

    data = load_rubric_yaml()
    rubric = RubricVersion(version=int(data["version"]), name=data["name"], is_current=True)
    session.add(rubric)
    session.flush()
    for position, d in enumerate(data["domains"]):
        session.add(
            Domain(
                rubric_version_id=rubric.id,
                code=d["code"],
                name=d["name"],
                description=d.get("description", "").strip(),
                look_fors=json.dumps(list(d.get("look_fors", []))),
                position=position,
            )
        )
    if session.exec(select(Block)).first() is None:
        for position, b in enumerate(data.get("blocks", [])):
            session.add(Block(code=b["code"], name=b["name"], position=position))
    session.flush()
    log.info("Seeded rubric %r version %s with %d domains", rubric.name, rubric.version, len(data["domains"]))
    return rubric


def seed_library(*, session: Session) -> int:
    """Add library steps whose code is not in the database yet; return how many were created.
    Flushes but does not commit."""
    known = set(session.exec(select(LibraryStep.code)).all())
    created = 0
    for item in load_library_yaml():
        if item["code"] in known:
            continue
        session.add(
            LibraryStep(
                code=item["code"],
                domain_code=item["domain"],
                title=item["title"],
                move=item["move"].strip(),
                look_for=item.get("look_for", "").strip(),
                status="active",
            )
        )
        known.add(item["code"])
        created += 1
    session.flush()
    if created:
        log.info("Seeded %d library steps", created)
    return created


def seed_reference_data(*, session: Session) -> None:
    """Seed the default rubric, blocks and action-step library, then commit."""
    seed_rubric(session=session)
    seed_library(session=session)
    session.commit()
