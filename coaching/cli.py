"""`python -m coaching`: set up the database, load the demo, create users, print the program
figures, export and restore. Bad input prints one line on stderr and exits with code 2."""

from __future__ import annotations

import argparse
import getpass
import importlib
import importlib.util
import json
import logging
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pydantic

from coaching.errors import CoachloopError, ValidationError

log = logging.getLogger("coachloop.cli")
EXTRA_COMMAND_MODULES = ["coaching.cli_brief", "coaching.cli_import"]
EXIT_BAD_INPUT = 2
DEMO_BANNER = "DEMO ONLY: these accounts share a public password; never use them with real data."

# An unreachable PostgreSQL host would otherwise block for minutes before any message appears.
os.environ.setdefault("PGCONNECT_TIMEOUT", "5")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit code 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _migrate() -> None:
    from db.migrate import upgrade

    upgrade()


def _session():
    from db.engine import get_session

    return get_session()


def _parse_date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{flag} {value!r} is not a date; write it as YYYY-MM-DD.") from None


# --- commands ---------------------------------------------------------------------------------


def cmd_init_db(args: argparse.Namespace) -> int:
    from db.engine import get_session
    from seeds import seed_reference_data

    _migrate()
    with get_session() as session:
        seed_reference_data(session=session)
    print("Database is ready (migrated to the latest schema; default rubric and library present).")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from seeds.demo import seed_demo

    _migrate()
    with _session() as session:
        result = seed_demo(session=session, reset=args.reset)
    if result.created:
        print("Loaded the demo school year: " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))
    else:
        print("The demo is already loaded; nothing changed (use --reset to reload it).")
    print(DEMO_BANNER)
    print(f"Demo password for every account below: {result.password}")
    for username, role, name in result.accounts:
        print(f"  {username:<16} {role:<8} {name}")
    return 0


def _read_password() -> str:
    password = os.environ.get("COACHLOOP_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise ValidationError("No password: set COACHLOOP_PASSWORD or run the command in a terminal.")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat the password: "):
            raise ValidationError("The two passwords differ.")
    return password


def cmd_create_user(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from coaching.users import create_user, validate_password
    from db.models import ROLES, School

    # Check what needs no database first, so that bad input writes nothing at all.
    if args.role not in ROLES:
        raise ValidationError(f"Unknown role {args.role!r}; choose one of {', '.join(ROLES)}.")
    if not args.username.strip():
        raise ValidationError("The username is empty.")
    if not args.name.strip():
        raise ValidationError("The display name (--name) is empty.")
    password = _read_password()
    validate_password(password)
    _migrate()
    with _session() as session:
        school_ids = []
        for code in args.school or []:
            school = session.exec(select(School).where(School.code == code)).first()
            if school is None:
                raise ValidationError(f"No school has the code {code!r}.")
            school_ids.append(school.id)
        user = create_user(
            session=session,
            username=args.username,
            role=args.role,
            display_name=args.name,
            password=password,
            email=args.email or "",
            school_ids=school_ids,
        )
    print(f"Created {user.role} {user.username!r} (id {user.id}).")
    return 0


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_metrics(figures: dict[str, Any]) -> None:
    """The program figures as a plain table."""
    w = figures["window"]
    rows = [
        ("Window", f"{w['from']} to {w['to']}"),
        ("Observations", _fmt(figures["observations"])),
        ("Action steps assigned", _fmt(figures["action_steps"])),
        ("Teachers observed", _fmt(figures["teachers_observed"])),
        ("Start score", _fmt(figures["start_score"])),
        ("End score", _fmt(figures["end_score"])),
        ("Gain", _fmt(figures["gain"])),
        ("Relative gain", _fmt(figures["relative_gain"], 3)),
        ("Sustained coaching share", _fmt(figures["sustained_coaching_share"], 3)),
        ("Action steps per teacher", _fmt(figures["steps_per_teacher"], 1)),
        ("Stick rate", _fmt(figures["stick_rate"], 3)),
        ("Effort follows need (Spearman)", _fmt(figures["effort_need_spearman"], 3)),
        ("Feedback latency, median hours", _fmt(figures["feedback_latency_median_h"], 1)),
        ("Debriefed within 48 h (share)", _fmt(figures["feedback_within_48h_share"], 3)),
    ]
    cov = figures["coverage"]
    rows.append(
        (
            f"Coverage as of {cov['as_of']}",
            f"{cov['teachers']} teachers, {cov['due']} due, {cov['overdue']} overdue, "
            f"share not overdue {_fmt(cov['share_not_overdue'], 3)}",
        )
    )
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("Domain means:")
    for name, mean in figures["domain_means"].items():
        print(f"  {name:<{width - 2}}  {_fmt(mean)}")


def cmd_set_password(args: argparse.Namespace) -> int:
    from coaching.users import set_password_on_server, validate_password

    password = _read_password()
    validate_password(password)
    _migrate()
    with _session() as session:
        user = set_password_on_server(session=session, username=args.username, password=password)
        print(f"New password set for {user.username} ({user.role}); the account is unlocked.")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from coaching.metrics import program_metrics
    from db.models import School

    start, end = _parse_date(args.date_from, "--from"), _parse_date(args.date_to, "--to")
    if start and end and start > end:
        raise ValidationError("--from is after --to.")
    _migrate()
    with _session() as session:
        school_ids = None
        if args.school:
            school_ids = []
            for code in args.school:
                sid = session.exec(select(School.id).where(School.code == code)).first()
                if sid is None:
                    raise ValidationError(f"No school has the code {code!r}.")
                school_ids.append(sid)
        figures = program_metrics(session=session, start=start, end=end, school_ids=school_ids)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_metrics(figures)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from coaching.exchange import export_dir

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValidationError(f"{out} exists and is not a folder.")
    _migrate()
    with _session() as session:
        paths = export_dir(session=session, out_dir=out, with_credentials=args.with_credentials)
    print(f"Wrote {len(paths)} files to {out}.")
    if args.with_credentials:
        print("This export contains password hashes: store it like a password.")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from coaching.exchange import restore_dir

    folder = Path(args.dir)
    if not folder.is_dir():
        raise ValidationError(f"{folder} is not a folder.")
    _migrate()
    with _session() as session:
        loaded = restore_dir(session=session, in_dir=folder)
    print(f"Restored {sum(loaded.values())} rows from {len(loaded)} files in {folder}.")
    return 0


# --- wiring -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command (including extension modules that are present)."""
    parser = _Parser(
        prog="python -m coaching",
        description="Coachloop command line. DATABASE_URL selects the database (default: SQLite at data/coachloop.db).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init-db", help="create or migrate the database and seed the default rubric")
    p.set_defaults(func=cmd_init_db)

    p = sub.add_parser(
        "seed-demo", help="load the demo school year (idempotent); prints the DEMO ONLY accounts"
    )
    p.add_argument("--reset", action="store_true", help="delete ALL data first, then load the demo")
    p.set_defaults(func=cmd_seed_demo)

    p = sub.add_parser(
        "create-user",
        help="create a user; the password comes from COACHLOOP_PASSWORD or a prompt",
        description="Create a user. The password is read from the COACHLOOP_PASSWORD environment "
        "variable or prompted for; it is never taken from the command line.",
    )
    p.add_argument("--username", required=True)
    p.add_argument("--role", required=True, help="admin, leader, coach or teacher")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--email", default="")
    p.add_argument("--school", nargs="+", metavar="CODE", help="school codes a leader or coach belongs to")
    p.set_defaults(func=cmd_create_user)

    p = sub.add_parser(
        "set-password",
        help="give an existing user a new password and unlock them (COACHLOOP_PASSWORD or a prompt)",
    )
    p.add_argument("--username", required=True)
    p.set_defaults(func=cmd_set_password)

    p = sub.add_parser(
        "metrics", help="print the program figures (default: the latest school year with data)"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="first day, YYYY-MM-DD (inclusive)")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="last day, YYYY-MM-DD (inclusive)")
    p.add_argument("--school", action="append", metavar="CODE", help="only this school (repeatable)")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("export", help="write one CSV per table and a data dictionary to a folder")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument(
        "--with-credentials", action="store_true", help="include password hashes (for backups only)"
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("restore", help="load an export folder into an empty database")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(func=cmd_restore)

    for name in EXTRA_COMMAND_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                continue
            importlib.import_module(name).register(sub)
        except Exception as exc:  # noqa: BLE001 - a broken extension must not take the CLI down
            log.warning("Command module %s could not be loaded: %s", name, exc)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input or unusable database)."""
    from sqlalchemy.exc import DatabaseError, OperationalError

    from db.migrate import describe_db_error

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CoachloopError as exc:
        _fail(str(exc))
    except pydantic.ValidationError as exc:
        _fail("the configuration is not usable: " + "; ".join(err["msg"] for err in exc.errors()))
    except (OperationalError, DatabaseError) as exc:
        _fail(describe_db_error(exc))
    except KeyboardInterrupt:
        _fail("interrupted")
    except BrokenPipeError:  # output piped into `head`: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    return EXIT_BAD_INPUT


def _fail(message: str) -> None:
    line = " ".join(message.split())  # one line, whatever the message held
    print(f"error: {line}", file=sys.stderr)
