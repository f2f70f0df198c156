#!/usr/bin/env bash
# Throws schemathesis (from PyPI) at a running Opsdeck's `/api/v1/openapi.json`: generated and
# mutated requests on every operation, signed in with a session and an ingest token, checked
# for 5xx answers, answers that break their own schema, undocumented status codes and content
# types, and operations that work without their credentials.
#
#   scripts/api-fuzz.sh BASE_URL USER PASSWORD
#
# OPSDECK_FUZZ_EXAMPLES (default 25) sets the cases per operation and phase; raise it, or set
# OPSDECK_FUZZ_SECONDS for a time budget, for a longer run on demand. Run it against a
# throwaway database: it creates, changes and deletes whatever the API lets it.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
base=${1:?usage: api-fuzz.sh BASE_URL USER PASSWORD}
user=${2:?usage: api-fuzz.sh BASE_URL USER PASSWORD}
password=${3:?usage: api-fuzz.sh BASE_URL USER PASSWORD}
SCHEMATHESIS_VERSION=4.32.5
venv="$TOOLS_DIR/schemathesis-$SCHEMATHESIS_VERSION"
if [ ! -x "$venv/bin/st" ]; then
  step "installing schemathesis $SCHEMATHESIS_VERSION from PyPI"
  command -v python3 >/dev/null || apt_install python3 python3-venv
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
jq -n --arg u "$user" --arg p "$password" '{username: $u, password: $p}' >"$work/login.json"
curl -fsS -c "$work/jar" -H 'content-type: application/json' --data @"$work/login.json" \
  "$base/api/v1/auth/login" >/dev/null
OPSDECK_FUZZ_SESSION=$(awk '$6 == "opsdeck_session" {print $7}' "$work/jar")
[ -n "$OPSDECK_FUZZ_SESSION" ] || { echo "api-fuzz: signing in as $user gave no session"; exit 1; }
OPSDECK_FUZZ_TOKEN=$(curl -fsS -b "$work/jar" -H 'content-type: application/json' \
  -d "{\"name\":\"api-fuzz-$$-$RANDOM\",\"scope\":\"ingest\"}" "$base/api/v1/tokens" | jq -r .token)
export OPSDECK_FUZZ_SESSION OPSDECK_FUZZ_TOKEN

here="$(dirname "${BASH_SOURCE[0]}")/schemathesis"
budget=()
[ -n "${OPSDECK_FUZZ_SECONDS:-}" ] && budget=(--max-time "$OPSDECK_FUZZ_SECONDS")
# Which checks run: scripts/schemathesis/schemathesis.toml.
fuzz() {
  PYTHONPATH="$here" SCHEMATHESIS_HOOKS=hooks "$venv/bin/st" --config-file "$here/schemathesis.toml" \
    run "$base/api/v1/openapi.json" --url "$base" \
    --max-examples "${OPSDECK_FUZZ_EXAMPLES:-25}" "${budget[@]}" \
    --workers 2 --request-timeout 30 --no-color \
    --generation-database none "$@"
}
# Everything but signing out and changing users first: either can end the run's own session
# (a new password for its user signs that user out everywhere), and the rest would then only
# see 401s. Those two go last, on their own.
step "schemathesis: every operation but signing out and changing users"
fuzz --exclude-path /api/v1/auth/logout --exclude-path-regex '^/api/v1/users/\{username\}$'
step "schemathesis: signing out and changing users"
fuzz --include-path /api/v1/auth/logout --include-path-regex '^/api/v1/users/\{username\}$'
