"""The step state machine, exactly as DOMAIN.md's table defines it."""

from datetime import UTC, datetime, timedelta

import pytest

from coaching.lifecycle import RevisitFact, replay

T0 = datetime(2025, 9, 2, 17, 0, tzinfo=UTC)  # 10:00 in Los Angeles


def rv(days: float, rating: str, oid: int = 0) -> RevisitFact:
    return RevisitFact(at=T0 + timedelta(days=days), observation_id=oid or int(days * 10) + 1, rating=rating)


@pytest.mark.parametrize("rating", ["partial", "not_yet"])
def test_an_open_step_stays_open_after_a_partial_or_not_yet_revisit(rating):
    assert replay([rv(3, rating)]).state == "open"


def test_an_implemented_revisit_masters_an_open_step_at_that_observation_time():
    out = replay([rv(3, "implemented")])
    assert out.state == "mastered" and out.mastered_at == T0 + timedelta(days=3)


def test_a_second_implemented_revisit_after_21_days_sustains_the_step():
    out = replay([rv(3, "implemented"), rv(24, "implemented")])
    assert out.state == "sustained"
    assert out.sustained_at == T0 + timedelta(days=24)


def test_a_second_implemented_revisit_within_21_days_keeps_the_step_mastered():
    out = replay([rv(3, "implemented"), rv(23.5, "implemented")])
    assert out.state == "mastered" and out.mastered_at == T0 + timedelta(days=3)


def test_a_partial_revisit_after_mastery_reopens_the_step_and_clears_mastered_at_but_history_keeps_it():
    out = replay([rv(3, "implemented"), rv(10, "partial")])
    assert out.state == "open" and out.mastered_at is None
    assert [(e[1], e[2]) for e in out.events] == [("open", "mastered"), ("mastered", "open")]


def test_replay_orders_revisits_by_date_whatever_order_they_arrive_in():
    out = replay([rv(30, "implemented"), rv(3, "implemented")])
    assert out.state == "sustained"


def test_days_are_calendar_days_in_the_school_timezone():
    # mastered 2025-09-01 23:30 LA (06:30 UTC next day); 21 calendar days later at 00:30 LA is enough
    mastered = datetime(2025, 9, 2, 6, 30, tzinfo=UTC)
    later = datetime(2025, 9, 22, 7, 30, tzinfo=UTC)  # 2025-09-22 00:30 LA
    out = replay([RevisitFact(mastered, 1, "implemented"), RevisitFact(later, 2, "implemented")])
    assert out.state == "sustained"


def test_a_dropped_step_ignores_later_revisits():
    out = replay([rv(3, "partial"), rv(20, "implemented")], dropped_at=T0 + timedelta(days=10))
    assert out.state == "dropped" and [r.rating for r in out.ignored] == ["implemented"]
