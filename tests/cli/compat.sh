#!/usr/bin/env bash
# tests/compat/validate_confd.sh over a conf.d-like tree: the fixtures of
# Datadog's template constructs give "0 errors" and exit 0, with what
# schedules nothing counted by reason; a tree with broken files exits 1
# and lists each problem.
set -u
mw=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
script=$src/tests/compat/validate_confd.sh

bash "$script" "$src/tests/fixtures/templates/datadog" "$mw" >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok || { bad "datadog fixtures: exit $rc"; cat "$tmp/out" >&2; }
grep -q "^  files:         14 the Datadog Agent would read$" "$tmp/out" && ok || bad "file count"
grep -q "^  templates:     12 loaded; 2 other files are not checks" "$tmp/out" && ok \
  || bad "template count"
grep -q "^       2  configuration discovery$" "$tmp/out" && ok || bad "discovery count"
grep -q "^       1  only empty instance items$" "$tmp/out" && ok || bad "empty items count"
grep -q "^result: OK (14 files, 0 errors)$" "$tmp/out" && ok || { bad "result line"; cat "$tmp/out" >&2; }

bash "$script" --strict "$src/tests/fixtures/templates/datadog" "$mw" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "^result: FAILED (14 files, 12 errors)$" "$tmp/out" && ok \
  || { bad "--strict: missing checks are errors"; cat "$tmp/out" >&2; }

mkdir -p "$tmp/confd/web.d" "$tmp/confd/ok.d"
printf 'instances:\n  - a: 1\n   b: 2\n' >"$tmp/confd/web.d/conf.yaml"
printf 'instances:\n  - {}\n' >"$tmp/confd/ok.d/conf.yaml"
printf 'instances:\n  - {}\n' >"$tmp/confd/ok.d/conf.yaml.example"
bash "$script" "$tmp/confd" "$mw" >"$tmp/out" 2>&1
[ $? -eq 1 ] && ok || bad "broken conf.d: want exit 1"
grep -q "^    $tmp/confd/web.d/conf.yaml:3:[0-9]*: " "$tmp/out" && ok || bad "problem not listed"
grep -q "^result: FAILED (2 files, 1 errors)$" "$tmp/out" && ok || { bad "broken result"; cat "$tmp/out" >&2; }

bash "$script" "$tmp/nope" "$mw" >/dev/null 2>&1
[ $? -eq 2 ] && ok || bad "missing DIR: want exit 2"

tally
