"""Signing in: the real login form, failed-attempt counting and lockout, deactivated accounts,
the cookie key and token, and changing one's own password."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from coaching import admin, auth_keys, users
from coaching.errors import ConfigError, PermissionDenied, ValidationError
from coaching.settings import get_settings
from db.engine import get_engine
from db.models import AppSetting, AuditLog, User
from tests import factories

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PW = factories.PASSWORD


def _fresh(user_id: int) -> User:
    with Session(get_engine()) as s:
        return s.get(User, user_id)


def _actions(user_id: int) -> list[str]:
    with Session(get_engine()) as s:
        rows = s.exec(
            select(AuditLog).where(AuditLog.entity == "user", AuditLog.entity_id == str(user_id))
        ).all()
        return [r.action for r in rows]


@pytest.fixture
def accounts(sqlite_url):
    with Session(get_engine()) as s:
        factories.rubric(s)
        school = factories.school(s)
        boss = factories.user(s, "admin", username="boss", schools=[school])
        coach = factories.user(s, "coach", username="cora", name="Cora Coach", schools=[school])
        return {"admin": boss.id, "coach": coach.id}


def _sign_in(username: str, password: str, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    fields = {t.label: t for t in at.text_input}
    fields["Username"].input(username)
    fields["Password"].input(password)
    next(b for b in at.button if b.label == "Login").click().run()
    assert not at.exception, at.exception
    return at


def _sidebar(at: AppTest) -> str:
    return " ".join(str(m.value) for m in [*at.sidebar.markdown, *at.sidebar.caption])


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_the_login_form_signs_in_with_the_right_password(accounts):
    at = _sign_in("cora", PW)
    assert at.session_state["user_id"] == accounts["coach"]
    assert "Cora Coach" in _sidebar(at)
    assert "login" in _actions(accounts["coach"])
    # The next run (where the cookie is written) keeps the user signed in.
    at.run()
    assert not at.exception
    assert at.session_state["user_id"] == accounts["coach"]


def test_the_login_form_accepts_the_username_in_any_case(accounts):
    at = _sign_in("  CORA ", PW)
    assert at.session_state["user_id"] == accounts["coach"]


@pytest.mark.parametrize("username", ["cora", "nobody-by-this-name", "dee"])
def test_every_refused_sign_in_costs_one_bcrypt_check_so_timing_does_not_reveal_usernames(
    accounts, monkeypatch, username
):
    import bcrypt

    with Session(get_engine()) as s:  # "dee": a deactivated account, also absent from the library's list
        users.create_user(session=s, by=None, username="dee", display_name="Dee", role="coach", password=PW)
        dee = s.exec(select(User).where(User.username == "dee")).one()
        dee.active = False
        s.add(dee)
        s.commit()
    at = AppTest.from_file(APP, default_timeout=30).run()
    real, checks = bcrypt.checkpw, []

    def counting_checkpw(password, hashed):
        checks.append(hashed[:7])
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)
    at = _sign_in(username, "wrong-password", at)
    assert _errors(at) == [users.BAD_CREDENTIALS]
    assert checks == [b"$2b$12$"]  # exactly one check, at the cost real passwords are hashed with


def test_a_wrong_password_is_refused_and_counted_in_the_database(accounts):
    at = _sign_in("cora", "wrong-password")
    assert "user_id" not in at.session_state or at.session_state["user_id"] is None
    assert _errors(at) == [users.BAD_CREDENTIALS]
    assert _fresh(accounts["coach"]).failed_logins == 1
    assert "login_failed" in _actions(accounts["coach"])


def test_an_unknown_username_gets_the_same_message_as_a_wrong_password(accounts):
    at = _sign_in("nobody", PW)
    assert _errors(at) == [users.BAD_CREDENTIALS]


def test_five_failures_lock_the_account_and_the_sixth_try_with_the_right_password_fails(accounts):
    at = AppTest.from_file(APP, default_timeout=30).run()
    for _ in range(users.MAX_FAILED_LOGINS):
        at = _sign_in("cora", "wrong-password", at)
    assert _errors(at) == [users.LOCKED_MESSAGE]
    fresh = _fresh(accounts["coach"])
    assert fresh.locked and fresh.failed_logins == 5
    assert "lockout" in _actions(accounts["coach"])

    at = _sign_in("cora", PW, at)
    assert _errors(at) == [users.LOCKED_MESSAGE]
    assert at.session_state["user_id"] is None if "user_id" in at.session_state else True

    with Session(get_engine()) as s:
        admin.unlock_user(session=s, by=s.get(User, accounts["admin"]), user_id=accounts["coach"])
    at = _sign_in("cora", PW, AppTest.from_file(APP, default_timeout=30).run())
    assert at.session_state["user_id"] == accounts["coach"]
    assert _fresh(accounts["coach"]).failed_logins == 0


def test_a_success_resets_the_failure_count(accounts):
    at = AppTest.from_file(APP, default_timeout=30).run()
    for _ in range(4):
        at = _sign_in("cora", "wrong-password", at)
    at = _sign_in("cora", PW, at)
    assert at.session_state["user_id"] == accounts["coach"]
    assert _fresh(accounts["coach"]).failed_logins == 0


def test_a_deactivated_user_cannot_sign_in_and_their_open_session_ends(accounts):
    signed_in = AppTest.from_file(APP, default_timeout=30)
    signed_in.session_state["user_id"] = accounts["coach"]
    signed_in.run()
    assert "Cora Coach" in _sidebar(signed_in)

    with Session(get_engine()) as s:
        admin.deactivate_user(session=s, by=s.get(User, accounts["admin"]), user_id=accounts["coach"])

    at = _sign_in("cora", PW)
    assert _errors(at) == [users.BAD_CREDENTIALS]
    signed_in.run()
    assert not signed_in.exception
    assert signed_in.session_state["user_id"] is None if "user_id" in signed_in.session_state else True
    assert [t.label for t in signed_in.text_input] == ["Username", "Password"]


def test_signing_out_clears_the_session_and_shows_the_login_form(accounts):
    at = _sign_in("cora", PW)
    at.run()
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert not at.exception
    assert "user_id" not in at.session_state
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "logout" in _actions(accounts["coach"])


def test_a_temporary_password_must_be_changed_before_other_pages_open(accounts):
    with Session(get_engine()) as s:
        temp = admin.reset_password(session=s, by=s.get(User, accounts["admin"]), user_id=accounts["coach"])
    at = _sign_in("cora", temp)
    assert at.session_state["user_id"] == accounts["coach"]
    at.switch_page("app_pages/caseload.py").run()
    assert any("new password" in w.value for w in at.warning)
    at.switch_page("app_pages/account.py").run()
    fields = {t.label: t for t in at.text_input}
    fields["Current password"].input(temp)
    fields["New password"].input("a-brand-new-secret")
    fields["Repeat new password"].input("a-brand-new-secret")
    next(b for b in at.button if b.label == "Change password").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Your password is changed."]
    assert not _fresh(accounts["coach"]).must_change_password
    assert "change_password" in _actions(accounts["coach"])


def test_the_first_admin_is_created_with_the_setup_code_on_an_empty_install(sqlite_url, caplog):
    from coaching import setup

    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    with Session(get_engine()) as s:  # a fresh code, as if this process had just started
        code = setup.ensure_setup_code(session=s)
    assert any("create-user --role admin" in i.value for i in at.info)
    fields = {t.label: t for t in at.text_input}
    assert "Setup code" in fields and not [b for b in at.button if b.label == "Login"]
    fields["Setup code"].input("wrong-code")
    fields["Username"].input("root")
    fields["Display name"].input("Root Admin")
    fields["Password"].input("a-long-password")
    fields["Repeat password"].input("a-long-password")
    next(b for b in at.button if b.label == "Create admin").click().run()
    assert any("setup code is not right" in e for e in _errors(at))
    fields = {t.label: t for t in at.text_input}
    fields["Setup code"].input(code)
    next(b for b in at.button if b.label == "Create admin").click().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    at = _sign_in("root", "a-long-password", at)
    with Session(get_engine()) as s:
        root = users.find_user(s, "root")
    assert root.role == "admin" and at.session_state["user_id"] == root.id


# ---- domain level, both databases ----


@pytest.fixture
def coach(session):
    return factories.user(session, "coach", username="cora")


def test_authenticate_counts_failures_and_locks_after_five(session, coach):
    for i in range(1, 5):
        with pytest.raises(users.LoginRefused) as exc:
            users.authenticate(session=session, username="cora", password="nope-nope")
        assert not isinstance(exc.value, users.AccountLocked)
        session.refresh(coach)
        assert coach.failed_logins == i and not coach.locked
    with pytest.raises(users.AccountLocked):
        users.authenticate(session=session, username="cora", password="nope-nope")
    with pytest.raises(users.AccountLocked):
        users.authenticate(session=session, username="cora", password=PW)
    session.refresh(coach)
    assert coach.locked
    boss = factories.user(session, "admin")
    admin.unlock_user(session=session, by=boss, user_id=coach.id)
    assert users.authenticate(session=session, username="cora", password=PW).id == coach.id


def test_authenticate_refuses_a_deactivated_user_with_the_right_password(session, coach):
    boss = factories.user(session, "admin")
    admin.deactivate_user(session=session, by=boss, user_id=coach.id)
    with pytest.raises(users.LoginRefused):
        users.authenticate(session=session, username="cora", password=PW)
    admin.reactivate_user(session=session, by=boss, user_id=coach.id)
    assert users.authenticate(session=session, username="cora", password=PW).id == coach.id


def test_changing_ones_own_password_needs_the_current_one(session, coach):
    with pytest.raises(ValidationError, match="current password"):
        users.change_own_password(session=session, user=coach, current="wrong", new="new-password-1")
    with pytest.raises(ValidationError, match="at least"):
        users.change_own_password(session=session, user=coach, current=PW, new="short")
    users.change_own_password(session=session, user=coach, current=PW, new="new-password-1")
    assert users.authenticate(session=session, username="cora", password="new-password-1").id == coach.id
    with pytest.raises(users.LoginRefused):
        users.authenticate(session=session, username="cora", password=PW)
    row = session.exec(select(AuditLog).where(AuditLog.action == "change_password")).one()
    assert "new-password-1" not in row.detail and "$2b$" not in row.detail


def test_a_generated_cookie_key_is_stored_once_and_reused(session, monkeypatch, caplog):
    monkeypatch.delenv("COACHLOOP_COOKIE_KEY", raising=False)
    get_settings.cache_clear()
    with caplog.at_level(logging.INFO):
        first = auth_keys.cookie_key(session=session)
        second = auth_keys.cookie_key(session=session)
    assert first == second and len(first.encode()) >= 32
    assert session.get(AppSetting, auth_keys.COOKIE_KEY_SETTING).value == first
    generated = [r for r in caplog.records if "generated a cookie signing key" in r.getMessage()]
    assert len(generated) == 1
    assert first not in caplog.text


def test_two_processes_racing_to_store_the_cookie_key_agree(database_url, monkeypatch):
    monkeypatch.delenv("COACHLOOP_COOKIE_KEY", raising=False)
    get_settings.cache_clear()
    # Two sessions both see no key, then both try to insert one: the loser reads the winner's.
    with Session(get_engine()) as a, Session(get_engine()) as b:
        assert a.get(AppSetting, auth_keys.COOKIE_KEY_SETTING) is None
        key_a = auth_keys.cookie_key(session=a)
        b.add(AppSetting(key=auth_keys.COOKIE_KEY_SETTING, value="x" * 40))
        with pytest.raises(Exception):  # noqa: B017 - the backend's own IntegrityError
            b.commit()
        b.rollback()
        assert auth_keys.cookie_key(session=b) == key_a


def test_a_short_cookie_key_is_refused_from_the_environment(session, monkeypatch):
    monkeypatch.setenv("COACHLOOP_COOKIE_KEY", "too-short")
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        auth_keys.cookie_key(session=session)


def test_a_short_cookie_key_is_refused_from_secrets(session, monkeypatch):
    monkeypatch.delenv("COACHLOOP_COOKIE_KEY", raising=False)
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="secrets.toml"):
        auth_keys.cookie_key(session=session, secret_value="short")
    long_key = "k" * 32
    assert auth_keys.cookie_key(session=session, secret_value=long_key) == long_key


def test_the_environment_key_wins_over_the_stored_one(session, monkeypatch):
    monkeypatch.setenv("COACHLOOP_COOKIE_KEY", "e" * 40)
    get_settings.cache_clear()
    assert auth_keys.cookie_key(session=session) == "e" * 40
    assert session.get(AppSetting, auth_keys.COOKIE_KEY_SETTING) is None


def test_a_cookie_token_restores_only_active_unlocked_users(session, coach):
    key = "k" * 48
    token = auth_keys.make_token("cora", key, expiry_days=7)
    assert auth_keys.user_for_token(session=session, token=token, key=key).id == coach.id
    assert auth_keys.user_for_token(session=session, token=token, key="z" * 48) is None
    expired = auth_keys.make_token("cora", key, expiry_days=1, now=datetime.now() - timedelta(days=2))
    assert auth_keys.user_for_token(session=session, token=expired, key=key) is None
    assert auth_keys.user_for_token(session=session, token="garbage", key=key) is None
    boss = factories.user(session, "admin")
    admin.lock_user(session=session, by=boss, user_id=coach.id)
    assert auth_keys.user_for_token(session=session, token=token, key=key) is None
    admin.unlock_user(session=session, by=boss, user_id=coach.id)
    admin.deactivate_user(session=session, by=boss, user_id=coach.id)
    assert auth_keys.user_for_token(session=session, token=token, key=key) is None


def test_the_token_matches_what_streamlit_authenticator_reads(monkeypatch):
    import jwt

    key = "k" * 48
    token = auth_keys.make_token("cora", key, expiry_days=7)
    payload = jwt.decode(token, key, algorithms=["HS256"])
    assert payload["username"] == "cora" and payload["exp_date"] > datetime.now().timestamp()


def test_passwords_with_outer_spaces_are_refused_because_the_form_strips_them():
    with pytest.raises(ValidationError):
        users.validate_password(" padded-password ")


def test_usernames_are_stored_in_lower_case_and_unique_regardless_of_case(session):
    u = users.create_user(session=session, username="Mixed.Case", role="coach", display_name="M", password=PW)
    assert u.username == "mixed.case"
    with pytest.raises(ValidationError, match="taken"):
        users.create_user(session=session, username="MIXED.case", role="coach", display_name="M", password=PW)


def test_nobody_but_a_signed_in_active_user_changes_a_password(session, coach):
    boss = factories.user(session, "admin")
    admin.deactivate_user(session=session, by=boss, user_id=coach.id)
    with pytest.raises(PermissionDenied):
        users.change_own_password(session=session, user=coach, current=PW, new="new-password-1")


def test_a_short_cookie_key_in_secrets_toml_stops_the_login_page_with_a_clear_message(accounts, monkeypatch):
    monkeypatch.delenv("COACHLOOP_COOKIE_KEY", raising=False)
    get_settings.cache_clear()
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["COACHLOOP_COOKIE_KEY"] = "short-key"
    at.run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "secrets.toml" in error and "at least 32 bytes" in error
    assert not at.text_input


def test_a_long_cookie_key_in_secrets_toml_is_used_and_nothing_is_generated(accounts, monkeypatch):
    monkeypatch.delenv("COACHLOOP_COOKIE_KEY", raising=False)
    get_settings.cache_clear()
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["COACHLOOP_COOKIE_KEY"] = "s" * 40
    at = _sign_in("cora", PW, at.run())
    assert at.session_state["user_id"] == accounts["coach"]
    with Session(get_engine()) as s:
        assert s.get(AppSetting, auth_keys.COOKIE_KEY_SETTING) is None


def test_a_password_change_or_reset_voids_older_login_cookies(session, coach):
    key = "k" * 48
    old = auth_keys.make_token("cora", key, expiry_days=7, now=datetime.now() - timedelta(minutes=5))
    assert auth_keys.user_for_token(session=session, token=old, key=key, expiry_days=7).id == coach.id
    users.change_own_password(session=session, user=coach, current=PW, new="new-password-1")
    assert auth_keys.user_for_token(session=session, token=old, key=key, expiry_days=7) is None
    fresh = auth_keys.make_token("cora", key, expiry_days=7)
    assert auth_keys.user_for_token(session=session, token=fresh, key=key, expiry_days=7).id == coach.id
    boss = factories.user(session, "admin")
    other = factories.user(session, "coach", username="olga")
    before_reset = auth_keys.make_token("olga", key, expiry_days=7, now=datetime.now() - timedelta(minutes=1))
    assert (
        auth_keys.user_for_token(session=session, token=before_reset, key=key, expiry_days=7).id == other.id
    )
    admin.reset_password(session=session, by=boss, user_id=other.id)
    assert auth_keys.user_for_token(session=session, token=before_reset, key=key, expiry_days=7) is None
    newer = auth_keys.make_token("olga", key, expiry_days=7, now=datetime.now() + timedelta(seconds=5))
    assert auth_keys.user_for_token(session=session, token=newer, key=key, expiry_days=7).id == other.id


def test_parallel_failed_attempts_all_count_and_lock_the_account(session, coach):
    from concurrent.futures import ThreadPoolExecutor

    def attempt(_):
        with Session(get_engine(), expire_on_commit=False) as s:
            try:
                users.authenticate(session=s, username="cora", password="wrong-password")
            except users.LoginRefused:
                return True
        return False

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(attempt, range(8)))
    session.refresh(coach)
    assert coach.locked
    counted = session.exec(select(AuditLog).where(AuditLog.action == "login_failed")).all()
    # Attempts after the lock are refused without counting; every counted one is in the database.
    assert coach.failed_logins == len(counted) >= users.MAX_FAILED_LOGINS
    assert len(session.exec(select(AuditLog).where(AuditLog.action == "lockout")).all()) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "a\x00b"),
        ("display_name", "Name\x00"),
        ("password", "long-enough\x00pw"),
        ("username", "tab\tname"),
    ],
)
def test_control_characters_are_refused_in_new_accounts(session, field, value):
    args = {"username": "newone", "display_name": "New One", "password": "long-enough-pw"} | {field: value}
    with pytest.raises(ValidationError):
        users.create_user(session=session, role="coach", **args)
    assert users.find_user(session, "newone") is None


def test_the_cookie_script_keeps_its_values_inside_string_literals():
    from ui.auth import _cookie_script

    script = _cookie_script('coachloop"; evil=1', '</script><script>alert(1)</script>', 1_700_000_000_000)
    body = script.removeprefix("<script>").removesuffix("</script>")
    assert "<" not in body  # nothing can close the script tag early
    assert '"coachloop\\"; evil=1="' in body  # quotes escaped: the name stays one string
    assert "SameSite=Strict" in body and "path=/" in body
    assert "new Date(1700000000000)" in body
