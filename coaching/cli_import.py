"""`python -m coaching import FILE --kind roster|observations [--dry-run] [--map HEADER=CODE ...]`.

Always dry-runs first and prints the table; applies only when the file has no problems.
Exit codes: 0 done (or a clean dry run), 1 the file has problems (nothing written), 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from coaching.errors import ValidationError
from coaching.users import acting_user

EXIT_PROBLEMS = 1


def register(subparsers) -> None:
    """Add the `import` command to the CLI."""
    p = subparsers.add_parser(
        "import",
        help="import a roster or observations CSV/XLSX (dry run first; all-or-nothing)",
        description="Import a roster (teacher, school, grade, subject, coach) or an observations "
        "spreadsheet (date, teacher, observer, block, one column per domain, notes, action step). "
        "The dry-run table lists every problem with its spreadsheet row number; nothing is written "
        "unless the whole file is clean. Importing the same file again creates nothing.",
    )
    p.add_argument("file", metavar="FILE", help=".csv or .xlsx")
    p.add_argument("--kind", required=True, choices=["roster", "observations"])
    p.add_argument("--dry-run", action="store_true", help="only print what would be created and the problems")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="HEADER=TARGET",
        help="read a column as a domain code or a field (date, teacher, observer, block, notes, step; "
        "roster: teacher, email, school, grade, subject, coach) or 'ignore'; repeatable",
    )
    p.add_argument(
        "--as", dest="as_user", metavar="USERNAME", help="admin account to record (default: first admin)"
    )
    p.set_defaults(func=run)


def print_plan(plan) -> None:
    """The dry-run table, notes and counts, as plain text."""
    table = plan.table()
    if len(table):
        table["what"] = table["what"].str.slice(0, 90)
        with pd.option_context("display.max_rows", None, "display.max_colwidth", 80, "display.width", 200):
            print(table.to_string(index=False))
    mapped = [f"{h} -> {t}" for h, t in {**plan.mapping.roles, **plan.mapping.domain_columns}.items()]
    print("Columns: " + ("; ".join(mapped) or "none understood"))
    for note in plan.notes:
        print(f"Note: {note}")
    s = plan.summary
    print(
        f"{s['rows']} rows: {s['create']} to create, {s['exists']} already present, "
        f"{s['error']} with problems ({s['problems']} problems)."
    )


def run(args: argparse.Namespace) -> int:
    """Dry-run the file, print the table, then apply it unless --dry-run or it has problems."""
    from coaching import importer
    from db.engine import get_session
    from db.migrate import upgrade

    path = Path(args.file)
    if not path.is_file():
        raise ValidationError(f"{path} is not a file.")
    overrides = importer.parse_overrides(args.map)
    upgrade()
    with get_session() as session:
        user = acting_user(session, args.as_user)
        plan = importer.plan_file(
            session=session, user=user, source=path, filename=path.name, kind=args.kind, overrides=overrides
        )
        print_plan(plan)
        if plan.problems:
            print("Nothing was imported: fix the rows above (or map the columns with --map) and run again.")
            return EXIT_PROBLEMS
        if args.dry_run:
            print("Dry run: nothing was written.")
            return 0
        result = importer.apply_import(session=session, user=user, plan=plan)
    print(importer.describe_result(result))
    return 0
