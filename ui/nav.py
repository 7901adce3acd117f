"""Which pages exist, and which roles see each. app.py builds st.navigation from this; the guard
that starts every page checks the same table, so a page's URL is refused to the wrong role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PageSpec:
    file: str  # relative to the repository root
    title: str
    icon: str
    roles: tuple[str, ...]
    section: str


ALL = ("admin", "leader", "coach", "teacher")
PAGES: list[PageSpec] = [
    PageSpec(
        "app_pages/caseload.py", "Caseload", ":material/groups:", ("admin", "leader", "coach"), "Coaching"
    ),
    PageSpec("app_pages/observe.py", "Observe", ":material/edit_note:", ("admin", "coach"), "Coaching"),
    PageSpec(
        "app_pages/observation.py",
        "Observation",
        ":material/description:",
        ("admin", "leader", "coach"),
        "Coaching",
    ),
    PageSpec("app_pages/brief.py", "Prep brief", ":material/summarize:", ("admin", "coach"), "Coaching"),
    PageSpec("app_pages/my_coaching.py", "My coaching", ":material/school:", ("teacher",), "Coaching"),
    PageSpec(
        "app_pages/heatmap.py", "Heatmap", ":material/grid_on:", ("admin", "leader", "coach"), "Program"
    ),
    PageSpec(
        "app_pages/outcomes.py", "Outcomes", ":material/trending_up:", ("admin", "leader", "coach"), "Program"
    ),
    PageSpec("app_pages/library.py", "Rubric & library", ":material/menu_book:", ("admin", "coach"), "Admin"),
    PageSpec("app_pages/data.py", "Import & export", ":material/swap_horiz:", ("admin",), "Admin"),
    PageSpec("app_pages/users.py", "Users", ":material/manage_accounts:", ("admin",), "Admin"),
    PageSpec("app_pages/audit.py", "Audit log", ":material/history:", ("admin",), "Admin"),
    PageSpec("app_pages/account.py", "My account", ":material/person:", ALL, "Account"),
]
LOGIN_PAGE = "app_pages/login.py"


def spec_for(file: str) -> PageSpec | None:
    """The spec of a page given its path (absolute or relative)."""
    rel = Path(file).resolve().relative_to(ROOT).as_posix() if Path(file).is_absolute() else file
    return next((p for p in PAGES if p.file == rel), None)


def pages_for(role: str) -> list[PageSpec]:
    """The pages a role may open, in menu order."""
    return [p for p in PAGES if role in p.roles]
