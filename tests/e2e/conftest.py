"""Browser end-to-end harness: a real `streamlit run app.py` on 127.0.0.1 with a fresh demo database,
driven by Debian's headless Chromium through Playwright.

Every wait is bounded. Screenshots of each step and the server log go to test-artifacts/e2e/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
DEMO_PASSWORD = "coachloop-demo"
COOKIE_KEY = "e2e-only-cookie-key-not-a-secret-0123456"  # 40 characters
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHORT = 15_000  # ms: one Streamlit rerun with a page drawn
LONG = 60_000  # ms: the first page of a fresh server (boot, imports)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACHLOOP_"))}
    env.update(
        DATABASE_URL=db_url,
        COACHLOOP_DEMO="1",
        COACHLOOP_COOKIE_KEY=COOKIE_KEY,
        PYTHONUNBUFFERED="1",
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
    )
    env.update(extra)
    return env


@dataclass
class Accounts:
    """Demo accounts the tests sign in with (all share DEMO_PASSWORD)."""

    coach: str
    leader: str
    admin: str | None
    seeded_by_tests: bool


def _seed_fallback(db_url: str) -> None:
    """Hand-made users and data, used only while the demo generator is still a placeholder."""
    from tests import factories

    engine = create_engine(db_url)
    with Session(engine) as s:
        factories.rubric(s)
        school = factories.school(s, name="Harbor Elementary")
        coach = factories.user(
            s, "coach", username="demo-coach1", name="Dana Coach", schools=[school], password=DEMO_PASSWORD
        )
        factories.user(
            s, "leader", username="demo-leader1", name="Lee Leader", schools=[school], password=DEMO_PASSWORD
        )
        factories.user(s, "admin", username="demo-admin", name="Ada Admin", password=DEMO_PASSWORD)
        from datetime import UTC, datetime, timedelta

        base = datetime(2025, 9, 8, 17, 0, tzinfo=UTC)
        codes = ["CR", "SB", "EN", "CFU"]
        for i in range(6):
            t = factories.teacher(s, school, coach=coach, name=f"Teacher {chr(65 + i)}. Rivera")
            for k in range(3):
                obs = factories.observation(
                    s, t, coach, base + timedelta(days=14 * k + i), {c: 1 + (i + k) % 4 for c in codes}
                )
                if k == 0:
                    factories.step(s, obs, "Wait time")
    engine.dispose()


def _accounts(db_url: str, seeded: bool) -> Accounts:
    from db.models import Teacher, User

    engine = create_engine(db_url)
    with Session(engine) as s:

        def first(role: str, with_caseload: bool = False) -> str | None:
            q = select(User).where(User.role == role, User.active == True).order_by(User.id)  # noqa: E712
            if not seeded:
                q = q.where(User.is_demo == True)  # noqa: E712
            if with_caseload:
                q = q.where(User.id.in_(select(Teacher.coach_id)))
            u = s.exec(q).first()
            return u.username if u else None

        coach, leader, admin = first("coach", with_caseload=True), first("leader"), first("admin")
    engine.dispose()
    assert coach and leader, "the demo has no coach with a caseload or no leader"
    return Accounts(coach=coach, leader=leader, admin=admin, seeded_by_tests=seeded)


@dataclass
class AppServer:
    url: str
    db_url: str
    log: Path
    accounts: Accounts
    proc: subprocess.Popen = field(repr=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _start_streamlit(db_url: str, log: Path, **extra_env: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    fh = log.open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(db_url, **extra_env), stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"streamlit not healthy after 60 s:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # our own child, by its PID
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def e2e_db(tmp_path_factory, artifacts) -> tuple[str, Accounts]:
    """A fresh SQLite database booted exactly as the app boots it (migrate + demo), in a child process."""
    path = tmp_path_factory.mktemp("e2e-db") / "coachloop.db"
    db_url = f"sqlite:///{path}"
    started = time.monotonic()
    boot = subprocess.run(
        [sys.executable, "-c", "from ui.startup import boot; boot()"],
        cwd=ROOT,
        env=_env(db_url),
        capture_output=True,
        text=True,
        timeout=600,
    )
    (artifacts / "boot.log").write_text(boot.stdout + boot.stderr)
    assert boot.returncode == 0, boot.stderr[-4000:]
    print(f"\n[e2e] database booted with demo in {time.monotonic() - started:.1f} s")
    from db.models import User

    engine = create_engine(db_url)
    with Session(engine) as s:
        has_demo = s.exec(select(User).where(User.is_demo == True)).first() is not None  # noqa: E712
    engine.dispose()
    if not has_demo:
        _seed_fallback(db_url)
    return db_url, _accounts(db_url, seeded=not has_demo)


@pytest.fixture(scope="session")
def app_server(e2e_db, artifacts) -> Iterator[AppServer]:
    """`streamlit run app.py` on a free port of 127.0.0.1, offline (no LLM configured)."""
    db_url, accounts = e2e_db
    log = artifacts / "server.log"
    proc, base = _start_streamlit(db_url, log)
    try:
        yield AppServer(url=base, db_url=db_url, log=log, accounts=accounts, proc=proc)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def start_app_server(e2e_db, artifacts):
    """Start another app server on the same database with extra environment (e.g. an LLM endpoint)."""
    procs: list[subprocess.Popen] = []
    db_url, accounts = e2e_db

    def start(name: str, **env: str) -> AppServer:
        log = artifacts / f"server-{name}.log"
        proc, base = _start_streamlit(db_url, log, **env)
        procs.append(proc)
        return AppServer(url=base, db_url=db_url, log=log, accounts=accounts, proc=proc)

    yield start
    for p in procs:
        _stop(p)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; see test.sh)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True, timeout=60_000)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    """A fresh browser profile: no cookies, no storage."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(SHORT)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, request):
    pg = context.new_page()
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        try:  # what the browser showed when the test failed
            pg.screenshot(
                path=str(ARTIFACTS / f"FAILED-{Shots(request.node.name).prefix}.png"), full_page=True
            )
        except Exception:  # noqa: BLE001 - a failure screenshot is best effort
            pass


class Shots:
    """Numbered screenshots of each step of one test."""

    def __init__(self, test_name: str) -> None:
        self.prefix = re.sub(r"[^A-Za-z0-9_-]+", "-", test_name)[:80]
        self.n = 0

    def __call__(self, page, step: str) -> Path:
        self.n += 1
        path = ARTIFACTS / f"{self.prefix}-{self.n:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shot(request, artifacts) -> Shots:
    return Shots(request.node.name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


class Interactions:
    """Counts what a person does: each click and each field typed into is one interaction."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    @property
    def count(self) -> int:
        return len(self.steps)

    def click(self, locator, what: str = "") -> None:
        locator.click()
        self.steps.append(f"click {what}".strip())

    def fill(self, locator, text: str, what: str = "") -> None:
        locator.fill(text)
        self.steps.append(f"type {what}".strip())

    def press(self, locator, key: str, what: str = "") -> None:
        locator.press(key)
        self.steps.append(f"press {key} {what}".strip())

    def report(self) -> str:
        return f"{self.count} interactions: " + "; ".join(self.steps)


def login_form(page):
    """The Username and Password fields of the sign-in form (waits for the first draw)."""
    user = page.get_by_label("Username", exact=True)
    user.wait_for(timeout=LONG)
    return user, page.get_by_label("Password", exact=True)


def sign_in(page, base: str, username: str, password: str = DEMO_PASSWORD, counter=None) -> None:
    """Open the app and sign in through the real form; returns once the signed-in shell is drawn."""
    counter = counter or Interactions()
    page.goto(base, timeout=LONG)
    user, pw = login_form(page)
    counter.fill(user, username, "username")
    counter.fill(pw, password, "password")
    counter.click(page.get_by_role("button", name=re.compile(r"^(Login|Log in|Sign in)$")), "login")
    signed_in(page)


def signed_in(page, timeout: int = SHORT):
    """Wait until the signed-in shell (the sidebar's sign-out control) is drawn."""
    loc = page.get_by_role("button", name=re.compile("Sign out|Log out|Logout")).first
    loc.wait_for(timeout=timeout)
    return loc
