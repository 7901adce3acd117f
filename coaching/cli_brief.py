"""`python -m coaching brief --teacher ID [--offline] [--force] [--as USERNAME]`: print the
teacher's prep brief (the saved one while the records are unchanged)."""

from __future__ import annotations

import argparse
import sys

from coaching.users import acting_user


def register(subparsers) -> None:
    """Add the `brief` command to the CLI."""
    p = subparsers.add_parser(
        "brief",
        help="print a teacher's pre-debrief prep brief",
        description="Build (or reuse) the teacher's prep brief and print it as Markdown. With an LLM "
        "configured (OPENAI_API_KEY, OPENAI_BASE_URL, COACHLOOP_LLM_MODEL) the narrative is "
        "written by it; otherwise, or with --offline, the template brief is printed.",
    )
    p.add_argument("--teacher", type=int, required=True, metavar="ID", help="the teacher's id")
    p.add_argument("--offline", action="store_true", help="do not call the LLM; print the template brief")
    p.add_argument("--force", action="store_true", help="write a new brief even if the records are unchanged")
    p.add_argument(
        "--as",
        dest="as_user",
        metavar="USERNAME",
        help="coach or admin to act as (default: the first active admin)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the brief; grounding warnings go to stderr. Exit code 0 (LLM failures are not errors)."""
    from coaching.brief import brief_markdown, generate_brief
    from coaching.llm import make_client
    from coaching.settings import get_settings
    from db.engine import get_session

    client = None if args.offline else make_client(get_settings())
    with get_session() as session:
        user = acting_user(session, args.as_user)
        result = generate_brief(
            session=session,
            user=user,
            teacher_id=args.teacher,
            client=client,
            force=args.force,
            offline_reason="offline mode was requested (--offline)" if args.offline else "",
        )
        print(brief_markdown(result.brief), end="")
    if result.reused:
        print("(saved brief reused: the records have not changed; --force writes a new one)", file=sys.stderr)
    for f in result.findings:
        print(f"warning: {f.value} is not in the records: {f.sentence}", file=sys.stderr)
    return 0
