"""`python -m benchmarks [--quick] [--only NAME ...]`: run every benchmark module, write
.bench-cache/results.json (results-quick.json with --quick), print a readable table, exit non-zero
if any module raised. With --only, the other modules' last results in that file are kept."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime

from benchmarks import CACHE

# AppTest outside `streamlit run` logs "missing ScriptRunContext" on every run; keep the table readable.
os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")

MODULES = ("save", "aggregates", "brief", "pages")
RESULTS = CACHE / "results.json"
QUICK_RESULTS = CACHE / "results-quick.json"


def _flatten(value, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(value, dict):
        rows: list[tuple[str, object]] = []
        for k, v in value.items():
            rows += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return rows
    if isinstance(value, list | tuple) and value and all(isinstance(v, dict) for v in value):
        rows = []
        for i, v in enumerate(value):
            label = v.get("name") or v.get("label") or v.get("page") or str(i)
            rows += _flatten({k: x for k, x in v.items() if x is not label}, f"{prefix}[{label}]")
        return rows
    return [(prefix, value)]


def _fmt(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_matrix(value) -> bool:
    """A dict of rows, each a dict of scalars with the same keys (e.g. page -> timings)."""
    if not isinstance(value, dict) or len(value) < 2:
        return False
    rows = list(value.values())
    if not all(isinstance(r, dict) and r for r in rows):
        return False
    keys = list(rows[0])
    return all(list(r) == keys and not any(isinstance(v, dict | list) for v in r.values()) for r in rows)


def _render(result: dict, indent: str = "   ") -> list[str]:
    lines: list[str] = []
    scalars: list[tuple[str, object]] = []

    def flush() -> None:
        if scalars:
            width = max(len(k) for k, _ in scalars)
            lines.extend(f"{indent}{k.ljust(width)}  {_fmt(v)}" for k, v in scalars)
            scalars.clear()

    for key, value in result.items():
        if _is_matrix(value):
            flush()
            cols = list(next(iter(value.values())))
            cells = [[str(r)] + [_fmt(v[c]) for c in cols] for r, v in value.items()]
            widths = [max(len(x) for x in col) for col in zip([str(key)] + cols, *cells, strict=False)]
            lines.append(
                indent + "  ".join(h.ljust(w) for h, w in zip([str(key)] + cols, widths, strict=True))
            )
            lines.extend(
                indent
                + "  ".join(
                    c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
                )
                for row in cells
            )
        elif isinstance(value, dict) and value and any(isinstance(v, dict) for v in value.values()):
            flush()
            lines.append(f"{indent}{key}:")
            lines.extend(_render(value, indent + "  "))
        else:
            scalars.extend(_flatten(value, str(key)))
    flush()
    return lines


def table(report: dict) -> str:
    """The report as readable text: scalars as key/value lines, row dicts as aligned tables."""
    lines: list[str] = []
    for name, entry in report["modules"].items():
        status = entry["status"]
        head = f"== {name} ({status}"
        head += f", {entry['seconds']:.1f} s" if "seconds" in entry else ""
        head += f", ran {entry['ran_at']})" if "ran_at" in entry else ")"
        lines.append(head)
        if status == "skipped":
            lines.append(f"   {entry['note']}")
        elif status == "error":
            lines.append(f"   {entry['error']}")
        else:
            lines.extend(_render(entry["result"]))
    return "\n".join(lines)


def _earlier_modules(path: str, mode: str) -> dict:
    """The module results of an earlier run of the same mode in `path` (a partial run keeps them)."""
    try:
        with open(path, encoding="utf-8") as fh:
            earlier = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(earlier, dict) or earlier.get("mode") != mode:
        return {}
    return {k: v for k, v in (earlier.get("modules") or {}).items() if k in MODULES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="pilot scale only, under a minute")
    parser.add_argument("--only", nargs="*", choices=MODULES, help="run only these modules")
    parser.add_argument("--out", help=f"the JSON results file (default {RESULTS}, or {QUICK_RESULTS})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Benchmarks never call a real LLM: brief timings are for the facts and the prompt.
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        os.environ.pop(key, None)

    report: dict = {
        "mode": "quick" if args.quick else "full",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "modules": {},
    }
    out = os.path.abspath(args.out or (QUICK_RESULTS if args.quick else RESULTS))
    if args.only:
        report["modules"] = _earlier_modules(out, report["mode"])
    failed = False
    total = time.perf_counter()
    for name in args.only or MODULES:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.{name}":
                raise
            report["modules"][name] = {
                "status": "skipped",
                "note": f"benchmarks/{name}.py does not exist yet",
            }
            continue
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            result = module.run(quick=args.quick)
            report["modules"][name] = {
                "status": "ok",
                "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - started, 2),
                "result": result,
            }
        except Exception as exc:  # noqa: BLE001 - report every module, then fail the run
            failed = True
            traceback.print_exc()
            report["modules"][name] = {
                "status": "error",
                "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - started, 2),
                "error": f"{type(exc).__name__}: {exc}",
            }
    report["total_seconds"] = round(time.perf_counter() - total, 1)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, default=str)
    print(table(report))
    print(f"\n{report['mode']} run in {report['total_seconds']} s; results written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
