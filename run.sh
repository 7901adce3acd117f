#!/usr/bin/env bash
# Set up (first time) and run Coachloop on the embedded SQLite database at data/coachloop.db.
# COACHLOOP_DEMO=1 ./run.sh loads the demo data into an empty database.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install --disable-pip-version-check -q -r requirements.txt
  echo "$want" > "$stamp"
fi
exec .venv/bin/streamlit run app.py --browser.gatherUsageStats false "$@"
