"""Writes observations.xlsx (committed): real Excel date cells, numeric scores, a blank row.

Run from the repository root: .venv/bin/python tests/data/make_observations_xlsx.py
"""

from datetime import datetime
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent

wb = Workbook()
ws = wb.active
ws.title = "Walkthroughs"
ws.append(["Observation Date", "Teacher", "Observed by", "Block", "CR", "SB", "Engagement", "Notes"])
ws.append([datetime(2025, 9, 3, 9, 30), "Ana Lopez", "mrivera", "Whole Group", 2, 3, 3, "Fast start."])
ws.append([datetime(2025, 9, 4), "Ben Okafor", "Maria Rivera", "SGR", 3, 2, None, ""])
ws.append([None] * 8)
ws.append(["2025-09-05", "Carla Diaz", "jchen", "Intervention Block", 2.0, 1, 2, "Typed as text."])
wb.properties.creator = "coachloop tests"
wb.properties.created = datetime(2025, 9, 6)
wb.properties.modified = datetime(2025, 9, 6)
wb.save(HERE / "observations.xlsx")
