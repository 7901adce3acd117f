"""The pre-debrief prep brief: facts built from the records (bounded in size whatever the history),
an LLM narrative with an offline template fallback, the grounding check, and saved briefs.

Facts first: `build_facts` is a pure read; every figure carries the observation (id and date) or
the range of observations it comes from. `records_hash` ignores time-relative values (hours since
the last observation, days open...), so a brief is reused until the teacher's records change.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from coaching import access, audit, grounding, llm
from coaching.errors import NotFound
from coaching.privacy import Pseudonymiser, scrub_notes
from coaching.settings import get_settings
from coaching.steps import aware
from coaching.timeutil import local_date
from db.models import (
    ActionStep,
    Block,
    Brief,
    CoachingGoal,
    Domain,
    DomainScore,
    LibraryStep,
    Observation,
    Revisit,
    RubricVersion,
    School,
    User,
    utcnow,
)

log = logging.getLogger(__name__)

RECENT_OBSERVATIONS = 3  # per-observation detail is kept for these; older history is summarised
MAX_STEPS = 6
MAX_REVISITS_PER_STEP = 4
MAX_CANDIDATES = 3
NOTES_CHARS = 700
EVIDENCE_CHARS = 220
TEXT_CHARS = 240
DEBRIEF_FLAG_HOURS = 48
SCALE = {1: "Beginning", 2: "Developing", 3: "Proficient", 4: "Exemplary"}
# Values that change with the clock alone: left out of records_hash.
TIME_KEYS = frozenset(
    {
        "as_of",
        "days_since_last",
        "cadence_status",
        "hours_since",
        "debrief_overdue",
        "days_open",
        "past_check_back",
    }
)
# Free text written by people: scrubbed before a prompt, left out when notes_in_prompts is off.
FREE_TEXT_KEYS = frozenset({"notes", "evidence", "note", "debrief_notes", "text"})


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def _mean(values: list[int]) -> float | None:
    return _round(sum(values) / len(values)) if values else None


def _src(obs_id: int, at: datetime) -> dict[str, Any]:
    return {"observation_id": obs_id, "date": local_date(aware(at)).isoformat()}


def _range(first: datetime | None, last: datetime | None, n: int) -> dict[str, Any]:
    return {
        "observations": n,
        "from": local_date(aware(first)).isoformat() if first else None,
        "to": local_date(aware(last)).isoformat() if last else None,
    }


def _clip(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cadence_status(days: int | None) -> str:
    s = get_settings()
    if days is None or days >= s.overdue_days:
        return "overdue"
    return "due" if days >= s.due_days else "ok"


def _require_briefer(user: User) -> None:
    access.require_role(user, "admin", "coach")


# ------------------------------------------------------------------------------------------ facts


def build_facts(*, session: Session, user: User, teacher_id: int, now: datetime | None = None) -> dict:
    """The brief's facts for a teacher the user may see (coach or admin only); a pure read whose
    size does not grow with the teacher's history."""
    _require_briefer(user)
    teacher = access.get_teacher(session, user, teacher_id)
    settings = get_settings()
    now = aware(now) if now else utcnow()
    today = local_date(now)
    school = session.get(School, teacher.school_id)
    coach = session.get(User, teacher.coach_id) if teacher.coach_id else None
    rubric = session.exec(select(RubricVersion).where(RubricVersion.is_current == True)).first()  # noqa: E712
    domains = (
        session.exec(
            select(Domain.code, Domain.name)
            .where(Domain.rubric_version_id == rubric.id, Domain.retired == False)  # noqa: E712
            .order_by(Domain.position, Domain.code)
        ).all()
        if rubric
        else []
    )
    domain_names = dict(domains)
    blocks = dict(session.exec(select(Block.id, Block.name)).all())

    facts: dict[str, Any] = {
        "as_of": today.isoformat(),
        "teacher": {
            "id": teacher.id,
            "name": teacher.name,
            "school": school.name if school else "",
            "grade_band": teacher.grade_band,
            "subject": teacher.subject,
            "coach": coach.display_name if coach else "",
        },
        "rubric_scale": {str(k): v for k, v in SCALE.items()},
        "domains": {code: name for code, name in domains},
        "notes_included": settings.notes_in_prompts,
    }

    # Observation-level history: one row per observation (id, time, block, mean score), cheap even
    # for hundreds of observations; only the last few get per-domain detail.
    obs_rows = session.exec(
        select(
            Observation.id,
            Observation.observed_at,
            Observation.block_id,
            func.avg(DomainScore.score),
            func.count(DomainScore.score),
        )
        .join(DomainScore, DomainScore.observation_id == Observation.id, isouter=True)
        .where(Observation.teacher_id == teacher.id)
        .group_by(Observation.id, Observation.observed_at, Observation.block_id)
        .order_by(Observation.observed_at, Observation.id)
    ).all()
    history = [(oid, aware(at), block, _round(avg) if n else None) for oid, at, block, avg, n in obs_rows]
    n_obs = len(history)
    last = history[-1] if history else None
    days_since = (today - local_date(last[1])).days if last else None
    facts["cadence"] = {
        "observations_total": n_obs,
        "first_observed": local_date(history[0][1]).isoformat() if history else None,
        "last_observed": _src(last[0], last[1]) if last else None,
        "days_since_last": days_since,
        "cadence_status": _cadence_status(days_since),
        "due_after_days": settings.due_days,
        "overdue_after_days": settings.overdue_days,
        "debrief_flag_hours": DEBRIEF_FLAG_HOURS,
    }
    facts["goal"] = _goal(session, teacher.id)
    facts["steps"], facts["step_counts"] = _steps(session, teacher.id, today)

    recent_ids = [h[0] for h in history[-(RECENT_OBSERVATIONS + 1) :]]
    detail = _recent_detail(session, recent_ids, include_notes=settings.notes_in_prompts)
    recent = history[-RECENT_OBSERVATIONS:]
    facts["recent_observations"] = [
        {
            **_src(oid, at),
            "block": blocks.get(block, ""),
            "observer": detail[oid]["observer"],
            "score": score,
            "scores": detail[oid]["scores"],
        }
        for oid, at, block, score in reversed(recent)
    ]
    facts["latest"] = _latest(last, detail, blocks, now, settings.notes_in_prompts) if last else None
    facts["latest_vs_previous"] = _compare(history, detail, domain_names)
    facts["domain_trends"] = _domain_trends(session, teacher.id, history, domain_names)
    facts["block_trends"] = _block_trends(session, teacher.id, blocks)
    facts["history"] = _history_summary(history)
    changes = [c for c in facts["latest_vs_previous"] if c.get("change") is not None]
    facts["improved"] = [_change_line(c) for c in changes if c["change"] > 0]
    facts["slipped"] = [_change_line(c) for c in changes if c["change"] < 0]
    facts["candidate_steps"] = _candidates(session, teacher.id, facts, domain_names)
    return facts


def _goal(session: Session, teacher_id: int) -> dict | None:
    goal = session.exec(
        select(CoachingGoal)
        .where(CoachingGoal.teacher_id == teacher_id, CoachingGoal.closed_on == None)  # noqa: E711
        .order_by(col(CoachingGoal.id).desc())
    ).first()
    if goal is None:
        return None
    return {
        "text": _clip(goal.text, TEXT_CHARS),
        "domain": goal.domain_code,
        "set_on": goal.set_on.isoformat(),
    }


def _steps(session: Session, teacher_id: int, today) -> tuple[list[dict], dict[str, int]]:
    counts = dict(
        session.exec(
            select(ActionStep.state, func.count())
            .where(ActionStep.teacher_id == teacher_id)
            .group_by(ActionStep.state)
        ).all()
    )
    rows = session.exec(
        select(ActionStep, Observation.observed_at)
        .join(Observation, Observation.id == ActionStep.observation_id, isouter=True)
        .where(ActionStep.teacher_id == teacher_id, col(ActionStep.state).in_(("open", "mastered")))
        .order_by(col(ActionStep.state).desc(), col(ActionStep.assigned_at).desc(), col(ActionStep.id).desc())
        .limit(MAX_STEPS)
    ).all()
    ids = [s.id for s, _ in rows]
    revisits: dict[int, list[tuple]] = {i: [] for i in ids}
    if ids:
        for step_id, rating, note, obs_id, at in session.exec(
            select(Revisit.step_id, Revisit.rating, Revisit.note, Observation.id, Observation.observed_at)
            .join(Observation, Observation.id == Revisit.observation_id)
            .where(col(Revisit.step_id).in_(ids))
            .order_by(Observation.observed_at, Observation.id)
        ).all():
            revisits[step_id].append((rating, note, obs_id, aware(at)))
    steps = []
    for s, obs_at in rows:
        assigned = aware(s.assigned_at)
        history = revisits[s.id]
        item: dict[str, Any] = {
            "title": _clip(s.title, TEXT_CHARS),
            "domain": s.domain_code,
            "state": s.state,
            "assigned_on": local_date(assigned).isoformat(),
            "days_open": (today - local_date(assigned)).days,
            "check_back_on": s.check_back_on.isoformat(),
            "past_check_back": s.state == "open" and s.check_back_on < today,
            "revisit_count": len(history),
            "revisits": [
                {**_src(oid, at), "rating": rating, **({"note": _clip(note, EVIDENCE_CHARS)} if note else {})}
                for rating, note, oid, at in history[-MAX_REVISITS_PER_STEP:]
            ],
            "source": _src(s.observation_id, obs_at) if s.observation_id and obs_at else None,
        }
        if s.custom_text and s.custom_text != s.title:
            item["text"] = _clip(s.custom_text, TEXT_CHARS)
        if s.mastered_at:
            item["mastered_on"] = local_date(aware(s.mastered_at)).isoformat()
        steps.append(item)
    return steps, {state: int(counts.get(state, 0)) for state in ("open", "mastered", "sustained", "dropped")}


def _recent_detail(session: Session, ids: list[int], *, include_notes: bool) -> dict[int, dict]:
    if not ids:
        return {}
    detail: dict[int, dict] = {}
    for obs, observer in session.exec(
        select(Observation, User.display_name)
        .join(User, User.id == Observation.observer_id)
        .where(col(Observation.id).in_(ids))
    ).all():
        detail[obs.id] = {
            "observer": observer,
            "scores": {},
            "evidence": {},
            "notes": _clip(obs.notes, NOTES_CHARS) if include_notes else "",
            "debrief_notes": _clip(obs.debrief_notes, EVIDENCE_CHARS) if include_notes else "",
            "debriefed_at": aware(obs.debriefed_at),
            "duration_min": obs.duration_min,
        }
    for oid, code, score, evidence in session.exec(
        select(DomainScore.observation_id, DomainScore.domain_code, DomainScore.score, DomainScore.evidence)
        .where(col(DomainScore.observation_id).in_(ids))
        .order_by(DomainScore.id)
    ).all():
        detail[oid]["scores"][code] = score if score is not None else "not observed"
        if evidence and include_notes:
            detail[oid]["evidence"][code] = _clip(evidence, EVIDENCE_CHARS)
    return detail


def _latest(last: tuple, detail: dict[int, dict], blocks: dict, now: datetime, include_notes: bool) -> dict:
    oid, at, block, score = last
    d = detail[oid]
    hours = round((now - at).total_seconds() / 3600, 1)
    out: dict[str, Any] = {
        **_src(oid, at),
        "block": blocks.get(block, ""),
        "observer": d["observer"],
        "duration_min": d["duration_min"],
        "score": score,
        "scores": d["scores"],
        "debriefed_on": local_date(d["debriefed_at"]).isoformat() if d["debriefed_at"] else None,
        "hours_since": hours,
        "debrief_overdue": d["debriefed_at"] is None and hours > DEBRIEF_FLAG_HOURS,
    }
    if include_notes:
        out["evidence"] = d["evidence"]
        out["notes"] = d["notes"]
        if d["debrief_notes"]:
            out["debrief_notes"] = d["debrief_notes"]
    return out


def _compare(history: list[tuple], detail: dict[int, dict], names: dict[str, str]) -> list[dict]:
    """Latest score per domain against the most recent earlier score among the recent observations."""
    if not history:
        return []
    ordered = [h for h in history[-(RECENT_OBSERVATIONS + 1) :]]
    latest_id, latest_at = ordered[-1][0], ordered[-1][1]
    out = []
    for code, name in names.items():
        score = detail[latest_id]["scores"].get(code)
        if not isinstance(score, int):
            continue
        item: dict[str, Any] = {
            "domain": code,
            "name": name,
            "latest": score,
            "source": _src(latest_id, latest_at),
        }
        for oid, at, _block, _score in reversed(ordered[:-1]):
            prev = detail[oid]["scores"].get(code)
            if isinstance(prev, int):
                item.update(previous=prev, change=score - prev, previous_source=_src(oid, at))
                break
        out.append(item)
    return out


def _change_line(c: dict) -> dict:
    return {
        "domain": c["domain"],
        "name": c["name"],
        "from": c["previous"],
        "to": c["latest"],
        "change": c["change"],
        "from_date": c["previous_source"]["date"],
        "to_date": c["source"]["date"],
    }


def _domain_trends(
    session: Session, teacher_id: int, history: list[tuple], names: dict[str, str]
) -> list[dict]:
    if not history:
        return []
    recent_ids = [h[0] for h in history[-RECENT_OBSERVATIONS:]]
    recent_from = history[-RECENT_OBSERVATIONS:][0][1]
    rows = session.exec(
        select(
            DomainScore.domain_code,
            func.count(DomainScore.score),
            func.sum(DomainScore.score),
            func.min(DomainScore.observed_at),
            func.max(DomainScore.observed_at),
        )
        .where(DomainScore.teacher_id == teacher_id, DomainScore.score != None)  # noqa: E711
        .group_by(DomainScore.domain_code)
    ).all()
    recent = dict(
        (code, (int(n), float(total or 0)))
        for code, n, total in session.exec(
            select(DomainScore.domain_code, func.count(DomainScore.score), func.sum(DomainScore.score))
            .where(col(DomainScore.observation_id).in_(recent_ids), DomainScore.score != None)  # noqa: E711
            .group_by(DomainScore.domain_code)
        ).all()
    )
    order = {code: i for i, code in enumerate(names)}
    out = []
    for code, n, total, first, lastd in sorted(rows, key=lambda r: order.get(r[0], len(order))):
        n, total = int(n), float(total or 0)
        rn, rtotal = recent.get(code, (0, 0.0))
        item: dict[str, Any] = {
            "domain": code,
            "name": names.get(code, code),
            "mean_all": _round(total / n) if n else None,
            "scored": n,
            "source": _range(aware(first), aware(lastd), n),
            "mean_recent": _round(rtotal / rn) if rn else None,
            "recent_from": local_date(recent_from).isoformat(),
        }
        if n > rn and rn:
            item["mean_earlier"] = _round((total - rtotal) / (n - rn))
            item["recent_minus_earlier"] = _round(item["mean_recent"] - item["mean_earlier"])
        out.append(item)
    return out


def _block_trends(session: Session, teacher_id: int, blocks: dict) -> list[dict]:
    rows = session.exec(
        select(
            DomainScore.block_id,
            func.count(func.distinct(DomainScore.observation_id)),
            func.avg(DomainScore.score),
            func.min(DomainScore.observed_at),
            func.max(DomainScore.observed_at),
        )
        .where(DomainScore.teacher_id == teacher_id, DomainScore.score != None)  # noqa: E711
        .group_by(DomainScore.block_id)
    ).all()
    return sorted(
        (
            {
                "block": blocks.get(block_id, str(block_id)),
                "mean": _round(avg),
                "source": _range(aware(first), aware(lastd), int(n)),
            }
            for block_id, n, avg, first, lastd in rows
        ),
        key=lambda b: (-b["source"]["observations"], b["block"]),
    )


def _history_summary(history: list[tuple]) -> dict:
    scored = [(oid, at, s) for oid, at, _b, s in history if s is not None]
    out: dict[str, Any] = {"scored_observations": len(scored)}
    if not scored:
        return out
    first, last = scored[0], scored[-1]
    out["first_score"] = {"score": first[2], **_src(first[0], first[1])}
    out["latest_score"] = {"score": last[2], **_src(last[0], last[1])}
    if len(scored) >= 2:
        out["change_since_first"] = _round(last[2] - first[2])
    older = scored[:-RECENT_OBSERVATIONS]
    if older:
        out["older"] = {
            "mean_score": _mean([s for _, _, s in older]),
            **_range(older[0][1], older[-1][1], len(older)),
        }
    return out


def _candidates(session: Session, teacher_id: int, facts: dict, names: dict[str, str]) -> list[dict]:
    """Library moves for the lowest domains of the latest observation (then lowest recent means),
    skipping moves the teacher already has."""
    latest = facts["latest"]
    scores = {c: s for c, s in (latest["scores"].items() if latest else []) if isinstance(s, int)}
    trend = {t["domain"]: t["mean_recent"] for t in facts["domain_trends"]}
    order = sorted(names, key=lambda c: (scores.get(c, 9), trend.get(c) or 9, list(names).index(c)))
    lowest = [c for c in order if c in scores or trend.get(c) is not None][:2]
    goal = (facts.get("goal") or {}).get("domain")
    if goal in names and goal not in lowest:
        lowest.insert(0, goal)
    if not lowest:
        return []
    have = set(
        session.exec(
            select(ActionStep.library_step_id).where(
                ActionStep.teacher_id == teacher_id,
                ActionStep.library_step_id != None,  # noqa: E711
            )
        ).all()
    )
    entries = session.exec(
        select(LibraryStep)
        .where(col(LibraryStep.domain_code).in_(lowest), LibraryStep.status == "active")
        .order_by(LibraryStep.code)
    ).all()
    # One move per domain first (goal domain, then the lowest), then more from the same domains.
    by_domain = {code: [e for e in entries if e.domain_code == code and e.id not in have] for code in lowest}
    entries = [e for rnd in range(MAX_CANDIDATES) for code in lowest for e in by_domain[code][rnd : rnd + 1]]
    out = []
    for e in entries[:MAX_CANDIDATES]:
        item: dict[str, Any] = {
            "code": e.code,
            "domain": e.domain_code,
            "title": _clip(e.title, TEXT_CHARS),
            "move": _clip(e.move, TEXT_CHARS),
        }
        if e.domain_code in scores:
            item["because"] = {
                "latest_score": scores[e.domain_code],
                **{k: latest[k] for k in ("observation_id", "date")},
            }
        else:
            item["because"] = {"mean_recent": trend.get(e.domain_code)}
        out.append(item)
    return out


def _strip_time(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_time(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [_strip_time(v) for v in value]
    return value


def records_hash(facts: dict) -> str:
    """Hash of the facts without time-relative values: equal while the teacher's records are."""
    blob = json.dumps(_strip_time(facts), sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


# --------------------------------------------------------------------------------------- privacy


def _pseudonymiser(facts: dict) -> Pseudonymiser:
    p = Pseudonymiser()
    p.add("teacher", facts["teacher"]["name"])
    p.add("coach", facts["teacher"]["coach"])
    p.add("school", facts["teacher"]["school"])
    observers = {o.get("observer") for o in facts["recent_observations"]}
    if facts.get("latest"):
        observers.add(facts["latest"].get("observer"))
    for name in sorted(n for n in observers if n):
        p.add("coach" if name == facts["teacher"]["coach"] else "observer", name)
    return p


def _private_copy(value: Any, p: Pseudonymiser, free: bool = False, parent: str = "") -> Any:
    if isinstance(value, dict):
        return {
            k: _private_copy(v, p, free or k in FREE_TEXT_KEYS or (parent == "steps" and k == "title"), k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_private_copy(v, p, free, parent) for v in value]
    if isinstance(value, str):
        # Names of people and schools become pseudonyms everywhere; people's free text is also
        # scrubbed (library wording is ours and stays as written). The delimiters of the data block
        # cannot be forged from inside it.
        hidden = p.hide(value)
        if free:
            hidden = scrub_notes(hidden)
        return hidden.replace("<<<", "« ").replace(">>>", " »")
    return value


def private_facts(facts: dict) -> tuple[dict, Pseudonymiser]:
    """A copy of the facts safe to send: pseudonyms for names, free text scrubbed (build_facts
    already leaves free text out when notes_in_prompts is off)."""
    p = _pseudonymiser(facts)
    safe = {k: _private_copy(v, p, k in FREE_TEXT_KEYS, k) for k, v in facts.items()}
    return safe, p


# ------------------------------------------------------------------------------------ offline brief


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    return str(value)


def _signed(value: float | int) -> str:
    return ("+" if value > 0 else "") + _fmt(value)


def _focus(facts: dict) -> dict:
    """The suggested focus of the offline brief: the goal's domain or the lowest latest domain,
    praise for the biggest gain or the highest score, one candidate step."""
    latest = facts.get("latest") or {}
    scores = {c: s for c, s in latest.get("scores", {}).items() if isinstance(s, int)}
    names = facts["domains"]
    goal = facts.get("goal") or {}
    focus = goal.get("domain") if goal.get("domain") in names else None
    if focus is None and scores:
        focus = min(scores, key=lambda c: (scores[c], list(names).index(c) if c in names else 99))
    if facts["improved"]:
        best = max(facts["improved"], key=lambda c: c["change"])
        praise = f"{best['name']} rose from {best['from']} to {best['to']} ({best['from_date']} to {best['to_date']})."
    elif scores:
        top = max(scores, key=lambda c: scores[c])
        praise = f"{names.get(top, top)} scored {scores[top]} on {latest['date']}."
    else:
        praise = ""
    candidate = next((c for c in facts["candidate_steps"] if c["domain"] == focus), None)
    candidate = candidate or (facts["candidate_steps"][0] if facts["candidate_steps"] else None)
    return {
        "domain": focus,
        "name": names.get(focus, focus) if focus else None,
        "praise": praise,
        "candidate": candidate,
    }


def offline_brief(facts: dict, reason: str = "") -> str:
    """A clear Markdown brief from the facts alone (no LLM), instantly; every figure is a fact."""
    t = facts["teacher"]
    c = facts["cadence"]
    latest = facts.get("latest")
    lines = [f"# Prep brief: {t['name']}"]
    meta = [t["school"], f"grades {t['grade_band']}" if t["grade_band"] else "", t["subject"]]
    meta.append(f"coach {t['coach']}" if t["coach"] else "no coach assigned")
    lines.append("*" + " · ".join(m for m in meta if m) + f" · as of {facts['as_of']}*")
    lines.append("")
    if reason:
        lines += [
            f"> **Offline brief** ({reason}). Built from the records only, a draft for the coach, not an evaluation.",
            "",
        ]

    lines.append("## Where things stand")
    if c["last_observed"]:
        lines.append(
            f"- Last observed **{c['last_observed']['date']}**, {c['days_since_last']} days ago "
            f"(cadence: **{c['cadence_status']}**; due at {c['due_after_days']} days, overdue at "
            f"{c['overdue_after_days']}). {c['observations_total']} observations since {c['first_observed']}."
        )
    else:
        lines.append("- Not observed yet: the first observation is the next step.")
    if latest:
        if latest["debriefed_on"]:
            lines.append(f"- The last observation was debriefed on {latest['debriefed_on']}.")
        else:
            flag = " **Debrief overdue (more than 48 hours).**" if latest["debrief_overdue"] else ""
            lines.append(
                f"- {latest['hours_since']} hours since the last observation, not debriefed yet.{flag}"
            )
    goal = facts.get("goal")
    if goal:
        dom = f" ({facts['domains'].get(goal['domain'], goal['domain'])})" if goal["domain"] else ""
        lines.append(f"- Coaching goal{dom}, set {goal['set_on']}: “{goal['text']}”")
    else:
        lines.append("- No coaching goal is set.")
    lines.append("")

    if latest:
        lines.append(f"## Last observation: {latest['date']}, {latest['block']}")
        score = f"mean {_fmt(latest['score'])}" if latest["score"] is not None else "no numeric score"
        lines.append(f"Observation #{latest['observation_id']} by {latest['observer']}, {score}.")
        lines.append("")
        compare = {x["domain"]: x for x in facts["latest_vs_previous"]}
        trends = {x["domain"]: x for x in facts["domain_trends"]}
        lines += [
            "| Domain | Latest | Previous | Change | Mean, last 3 | Mean, all |",
            "|---|---|---|---|---|---|",
        ]
        for code, name in facts["domains"].items():
            s = latest["scores"].get(code)
            if s is None:
                continue
            cmp_ = compare.get(code, {})
            prev = f"{cmp_['previous']} ({cmp_['previous_source']['date']})" if "previous" in cmp_ else "–"
            change = _signed(cmp_["change"]) if "change" in cmp_ else "–"
            tr = trends.get(code, {})
            lines.append(
                f"| {name} | {s} | {prev} | {change} | {_fmt(tr.get('mean_recent'))} | {_fmt(tr.get('mean_all'))} |"
            )
        evidence = latest.get("evidence") or {}
        if evidence:
            lines += ["", "Evidence:"]
            lines += [f"- **{facts['domains'].get(k, k)}**: {v}" for k, v in evidence.items()]
        if latest.get("notes"):
            lines += ["", f"Notes: {latest['notes']}"]
        lines.append("")

    lines.append("## Action steps")
    if facts["steps"]:
        for s in facts["steps"]:
            due = " (past its check-back date)" if s["past_check_back"] else ""
            head = (
                f"- **{s['title']}** ({s['state']}), assigned {s['assigned_on']}, {s['days_open']} days open, "
                f"check back {s['check_back_on']}{due}."
            )
            if s["revisits"]:
                history = "; ".join(f"{r['date']} {r['rating'].replace('_', ' ')}" for r in s["revisits"])
                head += f" Revisits ({s['revisit_count']}): {history}."
            else:
                head += " Not revisited yet."
            lines.append(head)
    else:
        lines.append("- No open or mastered steps.")
    counts = facts["step_counts"]
    lines.append(
        f"- All steps so far: {counts['open']} open, {counts['mastered']} mastered, "
        f"{counts['sustained']} sustained, {counts['dropped']} dropped."
    )
    lines.append("")

    lines.append("## Trends")
    if facts["improved"] or facts["slipped"]:
        for label, items in (("Improved", facts["improved"]), ("Slipped", facts["slipped"])):
            if items:
                lines.append(
                    f"- {label}: "
                    + "; ".join(
                        f"{i['name']} {i['from']} → {i['to']} ({i['from_date']} to {i['to_date']})"
                        for i in items
                    )
                )
    else:
        lines.append("- No domain changed between the last two observations that scored it.")
    h = facts["history"]
    if "change_since_first" in h:
        lines.append(
            f"- Observation mean {_fmt(h['first_score']['score'])} on {h['first_score']['date']} → "
            f"{_fmt(h['latest_score']['score'])} on {h['latest_score']['date']} ({_signed(h['change_since_first'])})."
        )
    if "older" in h:
        o = h["older"]
        lines.append(
            f"- Earlier history: {o['observations']} observations from {o['from']} to {o['to']}, mean {_fmt(o['mean_score'])}."
        )
    if facts["block_trends"]:
        lines.append(
            "- By block: "
            + "; ".join(
                f"{b['block']} {_fmt(b['mean'])} over {b['source']['observations']} observations"
                for b in facts["block_trends"]
            )
            + "."
        )
    lines.append("")

    f = _focus(facts)
    lines.append("## Suggested focus")
    if f["domain"]:
        lines.append(f"- **Focus:** {f['name']}.")
    if f["praise"]:
        lines.append(f"- **Praise:** {f['praise']}")
    if f["name"]:
        lines.append(
            f"- **Probing question:** “What did you notice about {f['name'].lower()} in that lesson, and what would you try first?”"
        )
    if f["candidate"]:
        lines.append(f"- **Candidate next step:** {f['candidate']['title']}: {f['candidate']['move']}")
    if not (f["domain"] or f["praise"] or f["candidate"]):
        lines.append("- Observe first; there is nothing to focus on yet.")
    return "\n".join(lines).strip() + "\n"


# ---------------------------------------------------------------------------------- orchestration


@dataclass
class BriefResult:
    """A brief as shown to the coach: the saved row, whether it was reused, the grounding findings."""

    brief: Brief
    reused: bool
    findings: list[grounding.Finding] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.brief.text

    @property
    def source(self) -> str:
        return self.brief.source

    @property
    def offline_reason(self) -> str:
        return self.brief.offline_reason


def findings_of(brief: Brief) -> list[grounding.Finding]:
    """The grounding findings saved with a brief."""
    return [grounding.Finding(**f) for f in json.loads(brief.grounding_json or "[]")]


def _latest_brief(session: Session, teacher_id: int) -> Brief | None:
    return session.exec(
        select(Brief)
        .where(Brief.teacher_id == teacher_id)
        .order_by(col(Brief.created_at).desc(), col(Brief.id).desc())
    ).first()


class BriefJob:
    """One brief in the making: `chunks()` yields the restored LLM text as it arrives (nothing when
    the brief is reused or offline); `finish()` saves it and returns the result. Never raises
    because of the LLM: any failure falls back to the offline brief with the reason."""

    def __init__(
        self,
        *,
        session: Session,
        user: User,
        teacher_id: int,
        client,
        force: bool,
        now: datetime | None,
        offline_reason: str,
        stream: bool = True,
    ):
        self.session, self.user, self.teacher_id = session, user, teacher_id
        self.client = client
        self.stream = stream
        self.facts = build_facts(session=session, user=user, teacher_id=teacher_id, now=now)
        self.records_hash = records_hash(self.facts)
        self.model = get_settings().llm_model
        self._no_client_reason = offline_reason
        self._parts: list[str] = []
        self._failure = ""
        self._stream: llm.LLMStream | None = None
        self._done = False
        previous = _latest_brief(session, teacher_id)
        reusable = previous is not None and previous.records_hash == self.records_hash and not force
        if reusable and previous.source == "offline" and client is not None and not offline_reason:
            reusable = False  # an LLM is available now: write the narrative the last one lacked
        self.reused: Brief | None = previous if reusable else None
        self.safe_facts, self.pseudonymiser = private_facts(self.facts)
        self.messages = llm.build_messages(self.safe_facts)
        self.prompt_text = llm.prompt_text(self.model, self.messages)

    @property
    def needs_llm(self) -> bool:
        """True when chunks() will call the LLM (not reused, a client is configured)."""
        return self.reused is None and self.client is not None and not self._no_client_reason

    def chunks(self) -> Iterator[str]:
        """The brief's text as it arrives, pseudonyms restored (buffered across chunk borders)."""
        if not self.needs_llm or self._stream is not None:
            return
        restorer = self.pseudonymiser.restorer()
        try:
            self._stream = llm.stream_brief(
                self.client,
                self.model,
                self.messages,
                stream=self.stream,
                deadline_s=get_settings().llm_deadline_s,
            )
            for chunk in self._stream:
                self._parts.append(chunk)
                out = restorer.feed(chunk)
                if out:
                    yield out
            tail = restorer.flush()
            if tail:
                yield tail
        except Exception as exc:  # noqa: BLE001 - the app never errors because of the LLM
            self._failure = llm.describe_failure(exc)
            log.warning("LLM brief failed, using the offline brief: %s", self._failure)

    def finish(self) -> BriefResult:
        """Save the brief (LLM text, or the offline brief with its reason) and audit it."""
        if self.reused is not None:
            return BriefResult(self.reused, True, findings_of(self.reused))
        if self._done:
            raise RuntimeError("finish() was already called")
        if self.needs_llm and self._stream is None:
            for _ in self.chunks():
                pass
        self._done = True
        raw = "".join(self._parts).strip()
        stream = self._stream
        if self.needs_llm and not self._failure and not raw:
            self._failure = "the LLM sent an empty reply"
        if self.needs_llm and not self._failure:
            text = self.pseudonymiser.restore(raw)
            findings = grounding.check(text, self.facts)
            row = Brief(
                source="llm",
                model=(stream.model or self.model)[:120],
                text=text,
                offline_reason="",
                prompt_tokens=stream.prompt_tokens,
                completion_tokens=stream.completion_tokens,
                latency_ms=stream.latency_ms,
                grounding_json=json.dumps([f.to_dict() for f in findings]),
                teacher_id=self.teacher_id,
                created_by=self.user.id,
                records_hash=self.records_hash,
                facts_json="",
                prompt_text=self.prompt_text,
                prompt_hash=llm.prompt_hash(self.prompt_text),
            )
        else:
            reason = (
                self._no_client_reason or self._failure or "no LLM is configured (OPENAI_API_KEY is not set)"
            )
            sent = self.needs_llm  # a prompt left the app only if an LLM was actually called
            findings = []
            row = Brief(
                source="offline",
                model="",
                text=offline_brief(self.facts, reason),
                offline_reason=reason[:300],
                latency_ms=stream.latency_ms if stream else None,
                teacher_id=self.teacher_id,
                created_by=self.user.id,
                records_hash=self.records_hash,
                facts_json="",
                prompt_text=self.prompt_text if sent else "",
                prompt_hash=llm.prompt_hash(self.prompt_text) if sent else "",
            )
        row.facts_json = json.dumps(self.facts, sort_keys=True, default=str, ensure_ascii=False)
        self.session.add(row)
        self.session.flush()
        audit.record(
            self.session,
            by=self.user,
            action="create",
            entity="brief",
            entity_id=row.id,
            detail={
                "teacher_id": self.teacher_id,
                "source": row.source,
                "model": row.model,
                "offline_reason": row.offline_reason,
                "prompt_hash": row.prompt_hash,
                "findings": len(findings),
            },
        )
        self.session.commit()
        return BriefResult(row, False, findings)


def start_brief(
    *,
    session: Session,
    user: User,
    teacher_id: int,
    client,
    force: bool = False,
    now: datetime | None = None,
    offline_reason: str = "",
    stream: bool = True,
) -> BriefJob:
    """Prepare a brief (facts, privacy, prompt); stream with `.chunks()`, save with `.finish()`.
    `offline_reason` forces the offline brief (e.g. the CLI's --offline)."""
    if client is None and not offline_reason:
        offline_reason = "no LLM is configured (OPENAI_API_KEY is not set)"
    return BriefJob(
        session=session,
        user=user,
        teacher_id=teacher_id,
        client=client,
        force=force,
        now=now,
        offline_reason=offline_reason,
        stream=stream,
    )


def generate_brief(
    *,
    session: Session,
    user: User,
    teacher_id: int,
    client,
    force: bool = False,
    on_chunk: Callable[[str], None] | None = None,
    now: datetime | None = None,
    offline_reason: str = "",
    stream: bool = True,
) -> BriefResult:
    """The teacher's brief: the saved one if the records are unchanged (and not `force`), else a
    new one from the LLM (chunks passed to `on_chunk`) or, failing that, the offline brief."""
    job = start_brief(
        session=session,
        user=user,
        teacher_id=teacher_id,
        client=client,
        force=force,
        now=now,
        offline_reason=offline_reason,
        stream=stream,
    )
    for chunk in job.chunks():
        if on_chunk:
            on_chunk(chunk)
    return job.finish()


def list_briefs(*, session: Session, user: User, teacher_id: int) -> list[Brief]:
    """The teacher's saved briefs, newest first (coach or admin, within their scope)."""
    _require_briefer(user)
    access.get_teacher(session, user, teacher_id)
    return list(
        session.exec(
            select(Brief)
            .where(Brief.teacher_id == teacher_id)
            .order_by(col(Brief.created_at).desc(), col(Brief.id).desc())
        ).all()
    )


def get_brief(*, session: Session, user: User, brief_id: int) -> Brief:
    """One saved brief, if the user may see its teacher."""
    _require_briefer(user)
    brief = session.get(Brief, brief_id)
    if brief is None:
        raise NotFound("That brief does not exist.")
    access.get_teacher(session, user, brief.teacher_id)
    return brief


def brief_markdown(brief: Brief) -> str:
    """The brief as a Markdown document for download, with its provenance and any warnings."""
    made = local_date(aware(brief.created_at)).isoformat()
    how = f"written by {brief.model}" if brief.source == "llm" else f"offline brief ({brief.offline_reason})"
    parts = [brief.text.rstrip(), "", "---", f"*Draft prep brief, {how}, saved {made}. Not an evaluation.*"]
    findings = findings_of(brief)
    if findings:
        parts += ["", "**Check these figures: they are not in the records.**"]
        parts += [f"- {f.value}: “{f.sentence}”" for f in findings]
    return "\n".join(parts) + "\n"


__all__ = [
    "BriefJob",
    "BriefResult",
    "brief_markdown",
    "build_facts",
    "generate_brief",
    "get_brief",
    "list_briefs",
    "offline_brief",
    "private_facts",
    "records_hash",
    "start_brief",
]
