#!/usr/bin/env bash
# `moonwatch validate`: every problem reported as file:line:col, exit 1;
# the bundled checks and templates are clean; a template whose check has
# no script is a note (a problem with --strict); the constructs of
# Datadog's shipped templates (tests/fixtures/templates/datadog) load
# without a problem, and those that schedule nothing say why.
set -u
mw=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$mw" validate "$src/checks" "$src/templates" "$src/deploy/demo/templates" \
  "$src/deploy/demo/checks" >"$tmp/out" 2>&1
[ $? -eq 0 ] && ok || { bad "bundled files not clean"; cat "$tmp/out" >&2; }

mkdir -p "$tmp/t/web.d" "$tmp/t/ghost.d" "$tmp/c"
printf 'instances:\n  - a: 1\n   b: 2\n' > "$tmp/t/web.d/conf.yaml"
printf 'instances:\n  - {}\n' > "$tmp/t/ghost.d/conf.yaml"
printf 'ad_identifiers: [ghost]\ninstances:\n  - {}\n' > "$tmp/t/ghost.d/auto_conf.yaml"
printf 'return { run = function(self)\n  local x = = 1\nend }\n' > "$tmp/c/syntax.lua"
printf 'return { run = function(self) end }\n' > "$tmp/c/web.lua"
"$mw" validate --no-bundled "$tmp/t" "$tmp/c" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && ok || bad "validate exit $rc, want 1"
grep -q "^$tmp/t/web.d/conf.yaml:3:[0-9]*: " "$tmp/out" && ok || bad "no file:line:col for broken YAML"
grep -q "^$tmp/c/syntax.lua:2: " "$tmp/out" && ok || bad "Lua syntax error not reported with line"
[ "$(wc -l < "$tmp/out")" -eq 2 ] && ok || { bad "want exactly 2 problems"; cat "$tmp/out" >&2; }
# No script for ghost: one note for its two files, on stderr, no problem.
grep -q "ghost" "$tmp/out" && bad "a missing check is a problem without --strict" || ok
[ "$(grep -c "note: no check named ghost: loaded, nothing runs until ghost.lua is in a checks directory" \
  "$tmp/err")" -eq 1 ] && ok || { bad "want one note for ghost"; cat "$tmp/err" >&2; }
grep -q "^2 path(s), 2 template(s), 2 problem(s), 1 note(s)$" "$tmp/err" && ok \
  || { bad "summary line"; tail -1 "$tmp/err" >&2; }

# --strict: each template of a check with no script is a problem.
"$mw" validate --strict --no-bundled "$tmp/t/ghost.d/conf.yaml" "$tmp/t/ghost.d/auto_conf.yaml" \
  >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && ok || bad "validate --strict exit $rc, want 1"
grep -q "^$tmp/t/ghost.d/conf.yaml: check 'ghost' has no ghost.lua in the checks directories$" \
  "$tmp/out" && ok || { bad "--strict: missing check not reported"; cat "$tmp/out" >&2; }
[ "$(wc -l < "$tmp/out")" -eq 2 ] && ok || { bad "--strict: want 2 problems"; cat "$tmp/out" >&2; }
"$mw" validate --no-bundled "$tmp/t/ghost.d/conf.yaml" >/dev/null 2>&1 && ok \
  || bad "without --strict a missing check fails validation"

# Datadog's constructs: nothing wrong; --strict only objects to the
# missing scripts; the idle templates say why they schedule nothing.
dd=$src/tests/fixtures/templates/datadog
"$mw" validate --no-bundled "$dd" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] && ok || { bad "datadog fixtures: exit $rc"; cat "$tmp/out" >&2; }
[ ! -s "$tmp/out" ] && ok || bad "datadog fixtures: problems reported"
grep -q "^1 path(s), 12 template(s), 0 problem(s), 16 note(s)$" "$tmp/err" && ok \
  || { bad "datadog fixtures: summary"; tail -1 "$tmp/err" >&2; }
for f in discovery_empty.d/auto_conf.yaml discovery_prefix.d/auto_conf.yaml; do
  grep -q "^$dd/$f: note: configuration discovery template (\"discovery\" and no instances)" \
    "$tmp/err" && ok || bad "no note for $f"
done
grep -q "^$dd/null_only.d/conf.yaml.default: note: every item of \"instances\" is empty" \
  "$tmp/err" && ok || bad "no note for null_only"
grep -q "^$dd/advanced_ad.d/conf.yaml: note: \"advanced_ad_identifiers\"" "$tmp/err" && ok \
  || bad "no note for advanced_ad"
"$mw" validate --strict --no-bundled "$dd" >"$tmp/out" 2>/dev/null
[ $? -eq 1 ] && [ "$(wc -l < "$tmp/out")" -eq 12 ] && ok \
  || { bad "datadog fixtures --strict: want 12 missing checks"; cat "$tmp/out" >&2; }
grep -v "has no .*\.lua in the checks directories$" "$tmp/out" && bad "--strict: other problems" || ok

"$mw" validate --strict >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "usage: moonwatch validate \[--strict\] PATH" "$tmp/err" && ok \
  || bad "no path: usage"

tally
