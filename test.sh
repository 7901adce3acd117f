#!/usr/bin/env bash
# Install the test dependencies (Python packages, Debian's chromium and PostgreSQL 15 when missing)
# and run the whole test suite: unit, store (SQLite + a throwaway PostgreSQL), AppTest and browser tests.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
if ! command -v initdb >/dev/null && [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then need_apt+=(postgresql-15); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# pg_ctl refuses to run as root: the test fixture runs the cluster as the `postgres` user.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --no-create-home postgres
fi
export PATH="$PATH:/usr/lib/postgresql/15/bin"

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install --disable-pip-version-check -q -r requirements-dev.txt

.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
