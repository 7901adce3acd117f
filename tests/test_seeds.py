"""Reference data: the default rubric, its blocks and the action-step library, seeded idempotently."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlmodel import Session, func, select

from db.engine import build_engine
from db.migrate import upgrade
from db.models import Block, Domain, LibraryStep, RubricVersion
from seeds import load_library_yaml, load_rubric_yaml, seed_library, seed_reference_data, seed_rubric

DOMAIN_CODES = ["CR", "SB", "EN", "CFU", "RIG", "SG", "RI", "LD"]


@pytest.fixture
def db(tmp_path):
    engine = build_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def _counts(session: Session) -> dict[str, int]:
    return {
        model.__name__: session.exec(select(func.count()).select_from(model)).one()
        for model in (RubricVersion, Domain, Block, LibraryStep)
    }


def test_the_default_rubric_has_eight_domains_with_two_to_four_look_fors_each_and_five_blocks(db):
    rubric = seed_rubric(session=db)
    db.commit()

    assert rubric.version == 1 and rubric.is_current and rubric.name == "Coachloop Core Rubric"
    domains = db.exec(
        select(Domain).where(Domain.rubric_version_id == rubric.id).order_by(Domain.position)
    ).all()
    assert [d.code for d in domains] == DOMAIN_CODES
    assert [d.position for d in domains] == list(range(8))
    for d in domains:
        look_fors = json.loads(d.look_fors)
        assert 2 <= len(look_fors) <= 4, d.code
        assert all(isinstance(x, str) and x.strip() for x in look_fors)
        assert d.name and d.description.strip()

    blocks = db.exec(select(Block).order_by(Block.position)).all()
    assert [b.code for b in blocks] == ["WG", "SGR", "INT", "IP", "TR"]
    assert [b.position for b in blocks] == list(range(5))

    scale = {s["value"]: s["label"] for s in load_rubric_yaml()["scale"]}
    assert scale == {1: "Beginning", 2: "Developing", 3: "Proficient", 4: "Exemplary"}


def test_the_library_has_four_to_six_moves_per_domain_all_in_rubric_domains_with_unique_codes(db):
    rubric_codes = {d["code"] for d in load_rubric_yaml()["domains"]}
    items = load_library_yaml()
    codes = [i["code"] for i in items]
    assert len(codes) == len(set(codes))
    assert {i["domain"] for i in items} <= rubric_codes

    created = seed_library(session=db)
    db.commit()

    assert created == len(items)
    steps = db.exec(select(LibraryStep)).all()
    assert all(s.status == "active" and s.title and s.move and s.look_for for s in steps)
    per_domain = Counter(s.domain_code for s in steps)
    assert set(per_domain) == rubric_codes
    assert all(4 <= n <= 6 for n in per_domain.values()), per_domain


def test_seeding_twice_creates_nothing_the_second_time(db):
    seed_reference_data(session=db)
    first = _counts(db)
    assert first == {"RubricVersion": 1, "Domain": 8, "Block": 5, "LibraryStep": 40}
    first_rubric_id = db.exec(select(RubricVersion.id)).one()

    seed_reference_data(session=db)
    assert seed_library(session=db) == 0
    assert seed_rubric(session=db).id == first_rubric_id
    db.commit()

    assert _counts(db) == first
