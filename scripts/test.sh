#!/usr/bin/env bash
# The test command from the README: runs every test of the workspace, PostgreSQL ones included.
#
# It starts a throwaway PostgreSQL (installing Debian's package when it is missing and we are root)
# so that a new user and CI run exactly the same thing and the PostgreSQL conformance tests never
# skip silently. Extra arguments go to the test runner (e.g. `scripts/test.sh -p directory-store`).
#
# The output of every test, passing ones included, is kept in a log (target/test-output.log, or
# $DINGSYNC_TEST_LOG) and searched afterwards for the secret values the tests configure (the
# list in crates/testkit/src/secrets.rs): a secret in any test's output fails the
# run, even when every test passed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DINGSYNC_TEST_PG_URL:-}" ] && [ "${DINGSYNC_TEST_SKIP_PG:-0}" != 1 ]; then
  pgdir=$(mktemp -d /tmp/dingsync-pg.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export DINGSYNC_TEST_PG_URL=$(scripts/pg-throwaway.sh start "$pgdir" "$port")
  trap 'scripts/pg-throwaway.sh stop "$pgdir"; rm -rf "$pgdir"' EXIT
  echo "test.sh: throwaway PostgreSQL at $DINGSYNC_TEST_PG_URL"
fi

log=${DINGSYNC_TEST_LOG:-target/test-output.log}
mkdir -p "$(dirname "$log")"
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast \
    --success-output final --failure-output final "$@" 2>&1 | tee "$log" || status=$?
else
  cargo test --workspace --no-fail-fast "$@" -- --nocapture 2>&1 | tee "$log" || status=$?
fi

# The quoted values between the BEGIN and END marker lines of the shared list.
secrets_file=crates/testkit/src/secrets.rs
mapfile -t secrets < <(sed -n '/BEGIN test secrets/,/END test secrets/p' "$secrets_file" |
  sed -n 's/^[[:space:]]*"\(.*\)",[[:space:]]*$/\1/p')
if [ "${#secrets[@]}" -lt 5 ]; then
  echo "test.sh: could not read the test secrets from $secrets_file" >&2
  exit 1
fi
leaks=0
for s in "${secrets[@]}"; do
  if n=$(grep -cF -- "$s" "$log"); then
    # The value is withheld on purpose: the line numbers say where to look.
    echo "test.sh: a configured test secret (${#s} characters) appears $n time(s) in $log," \
      "lines $(grep -nF -- "$s" "$log" | cut -d: -f1 | head -5 | paste -sd, -)" >&2
    leaks=1
  fi
done
if [ "$leaks" != 0 ]; then
  echo "test.sh: secrets found in the test output; failing the run" >&2
  exit 1
fi
exit "$status"
