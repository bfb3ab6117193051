#!/usr/bin/env bash
# `moonwatch check`: runs a bundled check for real, prints JSON lines,
# exits non-zero when the check fails.
set -u
mw=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the bundled system check reads /proc: real metrics, every line valid JSON
out=$("$mw" check system --times 2 --log-level error)
[ $? -eq 0 ] && ok || bad "system check exited non-zero"
echo "$out" | grep -q '"metric":"system.mem.total","kind":"gauge"' && ok || bad "no system.mem.total"
echo "$out" | grep -q '"metric":"system.load.1"' && ok || bad "no system.load.1"
echo "$out" | grep -q '"metric":"system.cpu.idle"' && ok || bad "no system.cpu.idle after two runs"
echo "$out" | grep -q '"check":"moonwatch.check_status","status":0' && ok || bad "no OK check_status"
echo "$out" | python3 -c 'import json,sys
for line in sys.stdin: json.loads(line)' && ok || bad "a line is not JSON"
total=$(echo "$out" | python3 -c 'import json,sys
for l in sys.stdin:
    r=json.loads(l)
    if r.get("metric")=="system.mem.total": print(int(r["value"]))')
want=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)
[ "$total" = "$want" ] && ok || bad "system.mem.total $total != /proc/meminfo $want"

# --instance: tags and service added to every sample
out=$("$mw" check system --instance '{"tags":["role:db"],"service":"pg"}' --log-level error)
echo "$out" | grep '"metric":"system.load.1"' | grep -q '"tags":\["role:db","service:pg"\]' \
  && ok || bad "instance tags not applied"

# a failing check: exit 1, CRITICAL with the reason
mkdir -p "$tmp/checks"
printf 'return { run = function(self) error("database unreachable") end }\n' > "$tmp/checks/failing.lua"
out=$("$mw" check failing --checks-dir "$tmp/checks" --log-level off)
[ $? -eq 1 ] && ok || bad "failing check did not exit 1"
echo "$out" | grep -q '"status":2,"message":"[^"]*database unreachable' && ok || bad "no CRITICAL with reason"

# a runaway check is stopped at its timeout
printf 'return { run = function(self) while true do end end }\n' > "$tmp/checks/spin.lua"
start=$(date +%s%N)
out=$("$mw" check spin --checks-dir "$tmp/checks" --instance '{"timeout":0.5}' --log-level off)
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc -eq 1 ] && ok || bad "spin check did not fail"
[ "$ms" -lt 5000 ] && ok || bad "spin check took ${ms} ms"
echo "$out" | grep -q '"status":2' && ok || bad "spin: no CRITICAL"

# unknown check, bad JSON
"$mw" check no_such_check --log-level off >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -ne 0 ] && grep -q "no_such_check" "$tmp/err" && ok || bad "unknown check not reported"
"$mw" check system --instance '{bad' >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -ne 0 ] && grep -q -- "--instance must be a JSON object" "$tmp/err" && ok || bad "bad JSON not reported"

tally
