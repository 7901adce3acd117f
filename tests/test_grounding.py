"""The grounding check: numbers and dates in a brief must be in its facts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coaching.grounding import check
from coaching.privacy import scrub_notes

FACTS = {
    "latest": {"date": "2025-09-03", "score": 2.5, "hours_since": 49.6, "observation_id": 812},
    "share": 0.62,
    "mean": 2.67,
    "steps": [{"title": "Directions in 15 words or fewer", "assigned_on": "2025-08-20"}],
    "grade_band": "3-5",
}


@pytest.mark.parametrize(
    "sentence",
    [
        "The score was 2.50 on 2025-09-03.",
        "The score was 2.5 on Sep 3, 2025.",
        "Observed on 9/3/2025 and again noted 3 September.",
        "On September 3rd the mean was 2.67, about 2.7.",
        "62% of the items, a share of 0.62.",
        "Roughly 50 hours have passed (49.6 hours).",
        "Keep directions to 15 words.",
        "Grades 3-5, observation 812.",
        "Three steps and ten minutes are words, not numbers.",
        "1. First item\n2) Second item",
        "The step began on 20 August 2025.",
    ],
)
def test_numbers_and_dates_from_the_facts_pass_whatever_their_format(sentence):
    assert check(sentence, FACTS) == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("The mean rose to 3.1 last time.", "number", "3.1"),
        ("Only 45% of students answered.", "number", "45%"),
        ("We last met on 2025-09-04.", "date", "2025-09-04"),
        ("We last met on Sep 4, 2025.", "date", "Sep 4, 2025"),
        ("We last met on 9/4/2025.", "date", "9/4/2025"),
        ("We meet again on 12 October.", "date", "12 October"),
        ("There are 11 open steps.", "number", "11"),
    ],
)
def test_an_invented_number_or_date_is_reported_with_its_sentence(text, kind, value):
    (finding,) = check("Intro line.\n" + text + " Another sentence with 2.5.", FACTS)
    assert (finding.kind, finding.value) == (kind, value)
    assert finding.sentence == text


def test_the_finding_names_only_the_offending_sentence():
    text = "Scores were 2.5 on 2025-09-03. Then it fell to 1.25. The step is 15 words."
    (finding,) = check(text, FACTS)
    assert finding.sentence == "Then it fell to 1.25." and finding.value == "1.25"


def test_a_number_inside_a_word_is_not_a_figure():
    assert check("Teacher T1 met Coach C1 about CR2 and 3rd-grade text.", {"n": 3}) == []


_PIECES = st.sampled_from(
    [
        "2.5",
        "62%",
        "Sep 3",
        "13/45/2025",
        "2025-02-30",
        "31 February",
        "1,234.5",
        "Sept. 3rd",
        "\n1. ",
        "0",
        "00",
        "3-5",
        "May 3",
        "T1",
        " ",
        ".",
        "\n",
        "September 31, 2025",
        "12/31",
        "99999999999999999999",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=25))
def test_the_check_never_raises_on_any_text(parts):
    text = "".join(parts)
    for f in check(text, FACTS):
        assert f.kind in ("number", "date") and f.value


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_scrubbing_never_raises_and_is_idempotent(text):
    once = scrub_notes(text)
    assert scrub_notes(once) == once
