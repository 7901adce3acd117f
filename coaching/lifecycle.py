"""The action-step state machine (DOMAIN.md, "States of an assigned step"), as one pure replay.

Every change to a step's revisits (a new observation, an edit of a past one) replays the machine
over all its revisits in date order, so the stored state is always what the table says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from coaching.timeutil import days_between

SUSTAIN_AFTER_DAYS = 21
TERMINAL = ("sustained", "dropped")


@dataclass(frozen=True)
class RevisitFact:
    """One revisit as the machine sees it."""

    at: datetime  # the revisiting observation's observed_at
    observation_id: int
    rating: str  # not_yet / partial / implemented


@dataclass
class Replay:
    """The outcome of replaying a step: its state, the times of each change, and its history."""

    state: str = "open"
    mastered_at: datetime | None = None
    sustained_at: datetime | None = None
    dropped_at: datetime | None = None
    events: list[tuple[datetime, str, str, str]] = field(default_factory=list)  # (at, from, to, cause)
    ignored: list[RevisitFact] = field(default_factory=list)  # revisits after a terminal state


def step(
    state: str, mastered_at: datetime | None, revisit: RevisitFact
) -> tuple[str, datetime | None, datetime | None]:
    """One transition: (state, mastered_at) + revisit -> (state, mastered_at, sustained_at)."""
    if state == "open":
        if revisit.rating == "implemented":
            return "mastered", revisit.at, None
        return "open", None, None
    if state == "mastered":
        assert mastered_at is not None
        if revisit.rating == "implemented":
            if days_between(mastered_at, revisit.at) >= SUSTAIN_AFTER_DAYS:
                return "sustained", mastered_at, revisit.at
            return "mastered", mastered_at, None
        return "open", None, None
    raise ValueError(f"A {state} step cannot be revisited.")


def replay(revisits: list[RevisitFact], dropped_at: datetime | None = None) -> Replay:
    """Replay the machine over `revisits` (any order) and an optional drop time."""
    out = Replay()
    for rv in sorted(revisits, key=lambda r: (r.at, r.observation_id)):
        if out.state in TERMINAL or (dropped_at is not None and rv.at > dropped_at):
            out.ignored.append(rv)
            continue
        before = out.state
        out.state, out.mastered_at, sustained_at = step(out.state, out.mastered_at, rv)
        if sustained_at is not None:
            out.sustained_at = sustained_at
        if out.state != before:
            out.events.append(
                (rv.at, before, out.state, f"revisit {rv.rating} (observation {rv.observation_id})")
            )
    if dropped_at is not None and out.state != "sustained":
        out.events.append((dropped_at, out.state, "dropped", "dropped"))
        out.state = "dropped"
        out.dropped_at = dropped_at
    return out
