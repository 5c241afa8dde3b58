#!/usr/bin/env bash
# One entry point for a fresh machine with Python 3.11+:
#   ./run.sh demo   install into .venv/ and run the demo (switch + simulated provider + a sample purchase)
#   ./run.sh test   install into .venv/ and run every check and test (SQLite and PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}

install() {
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
}

system_tools() {
  # pdftoppm and pdftotext (poppler-utils) render and read the finance reports' PDFs in the tests.
  if ! command -v pdftoppm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -qq poppler-utils >/dev/null || { apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null; }
    else
      echo "note: install poppler-utils (pdftoppm) to run the PDF report tests; they are skipped without it" >&2
    fi
  fi
}

case "${1:-}" in
  demo)
    shift
    install
    exec .venv/bin/xhuma demo "$@"
    ;;
  test)
    shift
    install
    system_tools
    echo "== ruff"
    .venv/bin/ruff check src tests bench tools
    .venv/bin/ruff format --check src tests bench tools
    echo "== mypy (strict)"
    .venv/bin/mypy
    .venv/bin/mypy --strict tools
    echo "== bandit (accepted findings: known-findings.toml)"
    .venv/bin/python tools/check_findings.py
    echo "== pytest"
    set +e
    .venv/bin/python -m pytest "$@"
    status=$?
    set -e
    # pytest's 5 means "no tests collected": that is a failure here, never a pass.
    exit $status
    ;;
  *)
    echo "usage: ./run.sh demo [--port 8080] | ./run.sh test [pytest args]" >&2
    exit 2
    ;;
esac
