#!/usr/bin/env bash
# The whole suite, as DESIGN.md's "Running it" says: PostgreSQL and Redis when they answer, loudly
# on SQLite otherwise; with CI=true a missing service fails the run instead of skipping a layer.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

missing=()
answers 127.0.0.1 5432 || missing+=("PostgreSQL at 127.0.0.1:5432")
answers 127.0.0.1 6379 || missing+=("Redis at 127.0.0.1:6379")
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    printf 'error: CI=true and %s not answering; no test layer may be skipped in CI.\n' "${missing[*]}" >&2
    exit 1
  fi
  printf '\n*** WARNING: %s not answering: running on SQLite and SKIPPING the integration tests. ***\n\n' "${missing[*]}"
fi

echo "== ruff"
$BIN/ruff check . || exit 1

if answers 127.0.0.1 5432; then
  # The datastore's lookups and the engine's commits (one statement on PostgreSQL, a transaction of two
  # elsewhere) must work on both databases; the full suite below runs on PostgreSQL.
  echo "== datastore and engine on SQLite"
  ENGINE_ROOM_TEST_DB=sqlite $BIN/pytest tests/datastore tests/workflows/actions/test_aggregate.py \
    tests/workflows/test_engine.py tests/test_structure.py tests/scheduler/test_scheduled.py \
    tests/workflows/actions/test_find_records.py tests/workflows/actions/test_update_record.py \
    tests/workflows/test_sql_statements.py -k "not concurrently" -q -p no:randomly || exit 1
fi

echo "== full suite"
$BIN/pytest "$@"
