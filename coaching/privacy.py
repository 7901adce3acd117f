"""What leaves the app in an LLM prompt: pseudonyms for teacher/coach/school names (restored in the
reply) and notes scrubbed of student names, emails, phone numbers and ID-like numbers.

With no student roster, name scrubbing is a heuristic (DOMAIN.md, "Privacy"): a capitalised word
survives only if it is known vocabulary and not a common first name; a lowercase word survives
unless it is a common first name or follows "student". Over-redaction is the accepted cost.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

STUDENT = "[student]"
EMAIL = "[email]"
PHONE = "[phone]"
ID = "[id]"

# Words that may start a sentence or be capitalised in coaching notes. Everything capitalised that
# is not here is treated as a name. Education vocabulary, rubric and block names included.
_VOCAB = """
a about above across after again against ago all almost alone along already also although always
am among an and another any anyone anything are around as ask asked asks at away back be because
become been before began begin beginning behind being below best better between both but by call
called calls came can cannot could did do does doing done down during each early either else end
ended enough entire even ever every everyone everything except few first for from full further
gave get gets give given gives go goes going gone good got great had half has have having he her
here hers herself high him himself his how however i if in instead into is it its itself just
keep kept last late later least less let lets like little long look looked looks lot low made
make makes many may maybe me more most mostly much must my myself near nearly need needed needs
never new next no nobody none nor not nothing now of off often on once one only onto or other
others our out over own part per perhaps please quite rather really right same saw say says see
seemed seems seen several shall she should show showed shows since so some someone something
sometimes soon still such take taken takes than that the their them themselves then there these
they this those though through throughout thus till to today together told too took toward
towards tried tries try trying two under until up upon us use used uses using very via was we
well went were what whatever when where whether which while who whole whom whose why will with
within without would yes yet you your yours three four five six seven eight nine ten zero
overall great nice strong clear quick slow quiet loud calm busy solid consistent inconsistent
students student teacher teachers class classes classroom room group groups partner partners
pair pairs team teams table tables kids kid child children scholars scholar learners learner
everybody lesson lessons task tasks work worksheet question questions answer answers response
responses routine routines direction directions instruction instructions expectation
expectations transition transitions timer time minute minutes second seconds period periods
board whiteboard whiteboards exit ticket tickets entry do now objective objectives agenda
materials notebook notebooks text texts reading writing math science history social studies
phonics fluency vocabulary comprehension decoding intervention block blocks small whole
independent practice rotation station stations center centers guided shared read aloud model
modeled modeling exemplar exemplars check checks checked checking understanding cfu rigor
engagement culture safety behavior behaviour delivery rubric domain domains score scores scored
step steps action goal goals focus praise feedback debrief debriefed observation observations
observed observe visit revisit revisited cold warm call narrate narrated narrating scan scanned
scanning wait pause prompt prompted prompts redirect redirected redirection correction
corrections corrected correct incorrect positive negative least invasive first second third
next last start started starting begin began finish finished ending stop stopped moved move
moves moving walked walk circulated circulate circulating monitored monitor monitoring marked
mark tracked track tracking sorted sort regrouped regroup protected teacher's students'
transitions followed follow following posted post stood sat raised raise hand hands voice voices
most some many few several all none half majority minority about around nearly almost only
beginning developing proficient exemplary implemented partial not yet mastered sustained dropped
open note notes evidence look fors look-fors plan planned planning data assessment assessments
quiz quizzes test tests unit units chapter page pages problem problems example examples
monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december jan feb mar apr jun jul aug sep sept oct nov dec
am pm ms mr mrs mx dr principal coach coaches school schools grade grades kindergarten k
ela esl ell iep sped ok okay ipad ipads chromebook chromebooks wg sgr int ip tr cr sb en rig
sg ri ld id ids english spanish french
ignore ignored reveal help helped helps parent parents family families guardian guardians mom dad
home office nurse counselor aide para paraprofessional sub substitute visitor visitors
asked answered explained wrote read said told talked shared noticed tried used gave took sat
great good nice excellent better worse needs next steps strengths strength growth area areas
when while during before after then also however overall still again today yesterday tomorrow
debrief follow up reminder reminded praise praised
""".split()
SAFE_WORDS = frozenset(_VOCAB)

# Common first names, always redacted (even when they are also English words: Will, Grace, Mark).
_NAMES = """
aaliyah aaron abigail adam adrian aiden alejandro alex alexa alexander alexis alice amelia amir
amy ana andre andrea andrew angel angela anna anthony antonio aria ariana ashley aubrey audrey
ava avery bella benjamin blake brandon brayden brian brianna brooklyn caleb cameron camila
carlos carter charles charlotte chase chloe chris christian christopher claire daniel david
deshawn destiny diego dylan elena eli elijah elizabeth ella ellie emily emma eric erick ethan
evelyn ezra faith fatima gabriel gabriela genesis grace hailey hannah harper hayden henry hope
hunter isaac isabella isaiah jack jackson jacob jade jamal james jasmine jason jayden jaylen
jennifer jeremiah jesus john jonathan jordan jose joseph joshua josiah joy juan julia julian
justin kaitlyn kayla kevin khloe kimberly kyle landon layla leah leo liam lily lincoln logan
lucas lucy luis luna madison malik maria mark mason mateo matthew maya mia michael miguel mila
muhammad natalia nathan nevaeh nicholas noah nora nova olivia omar owen paisley penelope priya
rachel riley robert rose ruby ryan samantha samuel santiago sarah savannah scarlett sebastian
sofia sophia stella taylor thomas tyler valentina victoria violet will william wyatt xavier
zoe zoey wei mohammed ahmed aisha jamie jesse kai dante trinity imani jalen jaden terrell
"""
FIRST_NAMES = frozenset(_NAMES.split())

# A lowercase word after one of these is taken to be a name unless it is vocabulary.
_STUDENT_CUES = {"student", "students", "kid", "child", "scholar", "learner", "boy", "girl", "name", "named"}

_EMAIL_RE = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_RE = re.compile(r"(?<!\w)(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?!\w)")
_ID_RE = re.compile(r"(?<![\w.])#?\d{5,}(?!\.?\d)")
_WORD_RE = re.compile(r"[^\W\d_][^\W\d_'’-]*(?:['’-][^\W\d_]+)*")
_POSSESSIVE_RE = re.compile(r"(['’]s?)$")
_PSEUDONYM_RE = re.compile(r"(?:Teacher T|Coach C|School S|Observer O)\d+")


def _is_name(word: str, prev: str) -> bool:
    base = _POSSESSIVE_RE.sub("", word)
    low = base.lower()
    if not low:
        return False
    if low in FIRST_NAMES:
        return True
    known = low in SAFE_WORDS or all(part in SAFE_WORDS for part in re.split(r"['’-]", low))
    if base[0].isupper():
        return not known
    return prev in _STUDENT_CUES and not known


def scrub_notes(text: str) -> str:
    """Free text with student names, emails, phone numbers and ID-like numbers replaced by
    placeholders; scores, dates and pseudonyms ("Teacher T1") are kept."""
    if not text:
        return ""
    text = _EMAIL_RE.sub(EMAIL, text)
    text = _PHONE_RE.sub(PHONE, text)
    text = _ID_RE.sub(ID, text)
    keep = [m.span() for m in _PSEUDONYM_RE.finditer(text)]
    keep += [m.span() for m in re.finditer(re.escape(STUDENT) + "|\\[(?:email|phone|id)\\]", text)]
    out: list[str] = []
    pos = 0
    prev = ""
    for m in _WORD_RE.finditer(text):
        start, end = m.span()
        word = m.group()
        if any(a <= start < b for a, b in keep):
            prev = ""  # a placeholder or pseudonym is not a cue ("[student]" is not "student")
            continue
        if _is_name(word, prev):
            suffix = _POSSESSIVE_RE.search(word)
            out.append(text[pos:start] + STUDENT + (suffix.group(1) if suffix else ""))
            pos = end
        prev = word.lower()
    out.append(text[pos:])
    return "".join(out)


class Pseudonymiser:
    """Stable pseudonyms for the people and schools in one prompt, and their restoration."""

    def __init__(self) -> None:
        self._forward: dict[str, str] = {}  # real text (full name or a name part) -> pseudonym
        self._back: dict[str, str] = {}  # pseudonym -> full real name
        self._counts: dict[str, int] = {}

    def add(self, kind: str, name: str | None) -> str:
        """Register a real name ("teacher", "coach", "school", "observer"); returns its pseudonym."""
        name = (name or "").strip()
        if not name:
            return ""
        if name in self._forward:
            return self._forward[name]
        prefix = {"teacher": ("Teacher", "T"), "coach": ("Coach", "C"), "school": ("School", "S")}.get(
            kind, ("Observer", "O")
        )
        self._counts[kind] = self._counts.get(kind, 0) + 1
        pseudonym = f"{prefix[0]} {prefix[1]}{self._counts[kind]}"
        self._forward[name] = pseudonym
        self._back[pseudonym] = name
        if kind != "school":  # first and last names alone ("Ms. Lopez", "Maria") point to the person
            for part in re.split(r"\s+", name):
                part = part.strip(".,")
                if len(part) >= 2 and part.lower() not in {"mr", "mrs", "ms", "mx", "dr"}:
                    self._forward.setdefault(part, pseudonym)
        return pseudonym

    @property
    def pseudonyms(self) -> list[str]:
        return list(self._back)

    @staticmethod
    def _pattern(keys: Iterable[str], flags: int = 0) -> re.Pattern | None:
        keys = sorted(keys, key=len, reverse=True)
        if not keys:
            return None
        return re.compile(r"(?<!\w)(" + "|".join(re.escape(k) for k in keys) + r")(?!\w)", flags)

    def hide(self, text: str) -> str:
        """Replace every registered real name (or name part) in `text` by its pseudonym. Case
        matters: a teacher called Will must not turn the verb "will" into a pseudonym."""
        pattern = self._pattern(self._forward)
        if pattern is None or not text:
            return text
        return pattern.sub(lambda m: self._forward[m.group(1)], text)

    def restore(self, text: str) -> str:
        """Replace every pseudonym in `text` by the real name."""
        pattern = self._pattern(self._back, re.IGNORECASE)
        if pattern is None or not text:
            return text
        lookup = {k.lower(): v for k, v in self._back.items()}
        return pattern.sub(lambda m: lookup[m.group(1).lower()], text)

    def restorer(self) -> StreamRestorer:
        """A restorer for streamed text (a pseudonym may arrive split across chunks)."""
        return StreamRestorer(self)


class StreamRestorer:
    """Feeds streamed chunks, emits restored text, holding back any tail that could still be the
    start of a pseudonym (or a pseudonym whose next character decides its boundary)."""

    def __init__(self, pseudonymiser: Pseudonymiser) -> None:
        self._p = pseudonymiser
        self._lower = [p.lower() for p in pseudonymiser.pseudonyms]
        self._longest = max((len(p) for p in self._lower), default=0)
        self._buf = ""

    def feed(self, chunk: str) -> str:
        self._buf += chunk
        low = self._buf.lower()
        cut = len(self._buf)
        for k in range(min(self._longest, len(low)), 0, -1):
            tail = low[-k:]
            if any(p.startswith(tail) for p in self._lower):
                cut = len(self._buf) - k
                break
        ready, self._buf = self._buf[:cut], self._buf[cut:]
        return self._p.restore(ready)

    def flush(self) -> str:
        ready, self._buf = self._buf, ""
        return self._p.restore(ready)
