"""Grounding check: every number and date in an LLM-written brief must appear in the facts it was
given. Numbers are compared after normalising (2.5 = 2.50, 62% = 0.62 = 62, a rounding of a fact
counts); dates as dates whatever their format; integers up to ten written as words are ignored."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}
_MONTH = r"(?P<mon>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
_DATE_PATTERNS = [
    re.compile(r"(?<!\d)(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})(?!\d)"),
    re.compile(r"(?<![\d/])(?P<month>\d{1,2})/(?P<day>\d{1,2})(?:/(?P<year>\d{4}|\d{2}))?(?![\d/])"),
    re.compile(rf"(?<![\w]){_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?(?!\w)", re.IGNORECASE),
    re.compile(rf"(?<![\w]){_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?(?!\w)", re.IGNORECASE),
]
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s?%|\s?percent)?(?![\w])")
_LIST_MARKER = re.compile(r"^(\s*)(\d+)[.)](\s)", re.MULTILINE)
_ISO_IN_FACTS = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_NUM_IN_FACTS = re.compile(r"(?<![\d.])\d+(?:\.\d+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^a-z])|\n+")


@dataclass(frozen=True)
class Finding:
    """A number or date in the text that the facts do not contain, with the sentence holding it."""

    kind: str  # number / date
    value: str
    sentence: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class _Known:
    numbers: set[Decimal]
    dates: set[date]

    @property
    def month_days(self) -> set[tuple[int, int]]:
        return {(d.month, d.day) for d in self.dates}


def _walk(value: Any, known: _Known) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(k, known)
            _walk(v, known)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            _walk(v, known)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        known.numbers.add(Decimal(str(value)))
    elif isinstance(value, date):
        known.dates.add(value)
    elif isinstance(value, str):
        for y, m, d in _ISO_IN_FACTS.findall(value):
            try:
                known.dates.add(date(int(y), int(m), int(d)))
            except ValueError:
                pass
        for n in _NUM_IN_FACTS.findall(value):
            known.numbers.add(Decimal(n))


def known_values(facts: Any) -> _Known:
    """Every number and date the facts contain (values and numbers written inside strings)."""
    known = _Known(set(), set())
    _walk(facts, known)
    return known


def _sentences(text: str) -> list[tuple[int, int, str]]:
    out = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        out.append((start, m.start(), text[start : m.start()]))
        start = m.end()
    out.append((start, len(text), text[start:]))
    return out


def _sentence_at(sentences: list[tuple[int, int, str]], pos: int) -> str:
    for start, end, s in sentences:
        if start <= pos <= end:
            return " ".join(s.split())
    return ""


def _date_matches(m: re.Match, known: _Known) -> bool | None:
    """True/False if the match is a date the facts hold or not; None if it is not a date."""
    g = m.groupdict()
    month = MONTHS[g["mon"].lower().rstrip(".")] if g.get("mon") else int(g["month"])
    day = int(g["day"])
    year = g.get("year")
    if year is not None:
        year_i = int(year) + (2000 if len(year) == 2 else 0)
        try:
            return date(year_i, month, day) in known.dates
        except ValueError:
            return False
    try:
        date(2000, month, day)  # leap year: every real month/day is valid
    except ValueError:
        return None if g.get("month") else False
    return (month, day) in known.month_days


def _matches(number: Decimal, places: int, percent: bool, known: _Known) -> bool:
    """A fact equals the number, or rounds to it at the text's precision; with a percent sign the
    fact may also be the share (0.62 for 62%)."""
    quant = Decimal(1).scaleb(-places)
    for fact in known.numbers:
        for value in (abs(fact), abs(fact) * 100) if percent else (abs(fact),):
            if value == number:
                return True
            try:
                if value.quantize(quant, rounding=ROUND_HALF_UP) == number:
                    return True
            except InvalidOperation:  # more digits than Decimal's precision: only equality counts
                continue
    return False


def check(text: str, facts: Any) -> list[Finding]:
    """The numbers and dates in `text` that the facts do not contain (empty: fully grounded)."""
    known = known_values(facts)
    sentences = _sentences(text)
    findings: list[Finding] = []
    masked = list(text)

    def mask(start: int, end: int) -> None:
        masked[start:end] = " " * (end - start)

    for m in _LIST_MARKER.finditer(text):
        mask(m.start(2), m.end(2) + 1)
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer("".join(masked)):
            ok = _date_matches(m, known)
            if ok is None:
                continue
            if not ok:
                findings.append(
                    Finding("date", m.group().strip().rstrip("."), _sentence_at(sentences, m.start()))
                )
            mask(m.start(), m.end())
    for m in _NUMBER.finditer("".join(masked)):
        whole, frac, pct = m.group(1), m.group(2) or "", m.group(3)
        value = Decimal(whole.replace(",", "") + frac)
        places = len(frac) - 1 if frac else 0
        if not _matches(value, places, bool(pct), known):
            findings.append(Finding("number", m.group().strip(), _sentence_at(sentences, m.start())))
    findings.sort(key=lambda f: text.find(f.value))
    return findings
