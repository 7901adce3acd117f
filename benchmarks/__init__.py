"""Coachloop benchmarks: `python -m benchmarks [--quick]` runs every module's `run(quick) -> dict`.

Each module (save, aggregates, brief, pages) measures one thing and returns plain numbers; the
runner times them, writes `.bench-cache/results.json` and prints one table.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench-cache"  # git-ignored: generated datasets and results
