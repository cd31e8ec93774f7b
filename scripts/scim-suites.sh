#!/usr/bin/env bash
# Run the two third-party SCIM 2.0 conformance suites against a live dingsync SCIM endpoint.
#
#   scripts/scim-suites.sh BASE_URL TOKEN
#   e.g. scripts/scim-suites.sh http://127.0.0.1:8080/scim/v2 "$SCIM_TOKEN"
#
# - scim2-tester (Yaal Coop, a library): driven by the small Python program below through
#   scim2-client's httpx2 engine; it discovers the server from /ServiceProviderConfig,
#   /ResourceTypes and /Schemas, then runs CRUD, attribute projection and PATCH add/remove/replace
#   on every published attribute of Users and Groups. Any ERROR or CRITICAL result fails.
# - scim-sanity's `probe` (strict mode): discovery, User and Group lifecycles, search/paging,
#   error bodies. Its exit code is non-zero on any FAIL or ERROR (warnings pass).
#
# Both suites create and delete real resources: point them at a throwaway directory (scim2-tester
# also expects a resource it just created on the first page of an unparameterised GET /Users).
# CI runs it against the real service: `cargo nextest run -p dingsync -E 'test(/scim::both/)'`.
# The virtualenv is made fresh under /tmp with pinned versions (set SCIM_SUITES_VENV to reuse one)
# and the token is passed through the environment, never on a command line other users can see.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BASE_URL TOKEN   (BASE_URL like http://127.0.0.1:8080/scim/v2)" >&2
    exit 2
fi
base_url=${1%/}
export SCIM_SUITES_URL=$base_url
export SCIM_SUITES_TOKEN=$2

python=${PYTHON:-python3}
venv=${SCIM_SUITES_VENV:-}
if [[ -z $venv ]]; then
    venv=$(mktemp -d /tmp/scim-suites.XXXXXX)
    trap 'rm -rf "$venv"' EXIT
fi
if [[ ! -x $venv/bin/scim-sanity ]]; then
    "$python" -m venv "$venv"
    # Pinned: a new release of either suite must not turn CI red (or green) on its own.
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        'scim2-tester[httpx2]==0.5.2' 'scim2-client==0.13.2' 'scim2-models==0.12.3' \
        'httpx2==2.17.0' 'scim-sanity==0.7.4'
fi

status=0

echo "== scim2-tester 0.5.2 against $base_url (Users, Groups)"
"$venv/bin/python" - <<'PY' || status=1
import os, sys
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

http = Client(
    base_url=os.environ["SCIM_SUITES_URL"],
    headers={"Authorization": "Bearer " + os.environ["SCIM_SUITES_TOKEN"]},
    timeout=30,
)
client = SyncSCIMClient(http)
results = check_server(client, resource_types=["User", "Group"])
failed = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
for r in results:
    where = f"[{r.resource_type}] " if r.resource_type else ""
    print(f"{r.status.name:<10} {where}{r.title}: {r.reason or ''}".rstrip())
    if r in failed and r.data is not None:
        print(f"           data: {r.data!r}"[:2000])
counts = {}
for r in results:
    counts[r.status.name] = counts.get(r.status.name, 0) + 1
print("scim2-tester summary:", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
sys.exit(1 if failed or not results else 0)
PY

echo "== scim-sanity 0.7.4 probe (strict) against $base_url"
# The probe takes its token only as --token; calling its CLI entry point from Python keeps the
# token out of the process list.
"$venv/bin/python" - <<'PY' || status=1
import os, sys
from scim_sanity.cli import main
sys.argv = ["scim-sanity", "probe", os.environ["SCIM_SUITES_URL"],
            "--token", os.environ["SCIM_SUITES_TOKEN"], "--strict", "--i-accept-side-effects"]
main()
PY

if [[ $status -ne 0 ]]; then
    echo "scim-suites: FAILED (see above)" >&2
else
    echo "scim-suites: both suites passed"
fi
exit $status
