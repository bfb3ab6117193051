#!/usr/bin/env bash
# `moonwatch validate`: every problem reported as file:line:col, exit 1;
# the bundled checks and templates are clean.
set -u
mw=$1
src=$2
fail=0 pass=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$mw" validate "$src/checks" "$src/templates" "$src/deploy/demo/templates" \
  "$src/deploy/demo/checks" >"$tmp/out" 2>&1
[ $? -eq 0 ] && ok || { bad "bundled files not clean"; cat "$tmp/out" >&2; }

mkdir -p "$tmp/t/web.d" "$tmp/t/ghost.d" "$tmp/c"
printf 'instances:\n  - a: 1\n   b: 2\n' > "$tmp/t/web.d/conf.yaml"
printf 'instances:\n  - {}\n' > "$tmp/t/ghost.d/conf.yaml"
printf 'return { run = function(self)\n  local x = = 1\nend }\n' > "$tmp/c/syntax.lua"
printf 'return { run = function(self) end }\n' > "$tmp/c/web.lua"
"$mw" validate --no-bundled "$tmp/t" "$tmp/c" >"$tmp/out" 2>/dev/null
rc=$?
[ $rc -eq 1 ] && ok || bad "validate exit $rc, want 1"
grep -q "^$tmp/t/web.d/conf.yaml:3:[0-9]*: " "$tmp/out" && ok || bad "no file:line:col for broken YAML"
grep -q "^$tmp/t/ghost.d/conf.yaml: check 'ghost' has no ghost.lua" "$tmp/out" && ok \
  || bad "missing check not reported"
grep -q "^$tmp/c/syntax.lua:2: " "$tmp/out" && ok || bad "Lua syntax error not reported with line"
[ "$(wc -l < "$tmp/out")" -eq 3 ] && ok || { bad "want exactly 3 problems"; cat "$tmp/out" >&2; }

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
