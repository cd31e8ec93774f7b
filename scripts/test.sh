#!/usr/bin/env bash
# The test command from the README: runs every test of the workspace, PostgreSQL ones included.
#
# It starts a throwaway PostgreSQL (installing Debian's package when it is missing and we are root)
# so that a new user and CI run exactly the same thing and the PostgreSQL conformance tests never
# skip silently. Extra arguments go to the test runner (e.g. `scripts/test.sh -p directory-store`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DINGSYNC_TEST_PG_URL:-}" ] && [ "${DINGSYNC_TEST_SKIP_PG:-0}" != 1 ]; then
  pgdir=$(mktemp -d /tmp/dingsync-pg.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export DINGSYNC_TEST_PG_URL=$(scripts/pg-throwaway.sh start "$pgdir" "$port")
  trap 'scripts/pg-throwaway.sh stop "$pgdir"; rm -rf "$pgdir"' EXIT
  echo "test.sh: throwaway PostgreSQL at $DINGSYNC_TEST_PG_URL"
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
