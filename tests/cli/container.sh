#!/usr/bin/env bash
# `moonwatch check container`: the bundled per-process check against a real
# process (a sleep started here), then against one that is gone, then with
# a pid that is not one.
set -u
mw=$1
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
sleep 300 &
sp=$!
trap 'kill "$sp" 2>/dev/null' EXIT

# The value of METRIC in the JSON lines on stdin (the last one), or nothing.
value_of() {
  python3 -c 'import json,sys
v=None
for l in sys.stdin:
    r=json.loads(l)
    if r.get("metric")==sys.argv[1]: v=r["value"]
if v is not None: print(v)' "$1"
}

# two runs: monotonic counts need a previous value to report a delta
out=$("$mw" check container --instance "{\"pid\": $sp, \"tags\": [\"t:1\"]}" --times 2 \
  --log-level error)
[ $? -eq 0 ] && ok || bad "container check exited non-zero"
for m in container.cpu.user container.cpu.system; do
  echo "$out" | grep -q "\"metric\":\"$m\",\"kind\":\"count\"" && ok || bad "no $m count"
done
for m in container.mem.rss container.threads; do
  echo "$out" | grep -q "\"metric\":\"$m\",\"kind\":\"gauge\"" && ok || bad "no $m gauge"
done
echo "$out" | grep '"metric":"container.mem.rss"' | grep -q '"tags":\["t:1"\]' \
  && ok || bad "instance tags not applied"
rss=$(echo "$out" | value_of container.mem.rss)
want=$(awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$sp/status")
python3 -c 'import sys; r=float(sys.argv[1]); sys.exit(0 if r > 0 else 1)' "${rss:-0}" \
  && ok || bad "container.mem.rss is not > 0: '$rss'"
# sleep's resident set barely moves: within 1 MiB of what status says now
python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) < 1048576 else 1)' \
  "${rss:-0}" "${want:-0}" && ok || bad "container.mem.rss $rss far from VmRSS $want"
[ "$(echo "$out" | value_of container.threads)" = 1 ] && ok || bad "sleep has not 1 thread"
cpu=$(echo "$out" | value_of container.cpu.user)
python3 -c 'import sys; v=float(sys.argv[1]); sys.exit(0 if 0 <= v < 1 else 1)' "${cpu:--1}" \
  && ok || bad "an idle sleep used $cpu s of user CPU in a second"
[ "$(echo "$out" | grep -c '"check":"container.process.up","status":0')" -eq 2 ] \
  && ok || bad "not two container.process.up OK"
echo "$out" | python3 -c 'import json,sys
for line in sys.stdin: json.loads(line)' && ok || bad "a line is not JSON"

# a pid given as a quoted string of digits works too
out=$("$mw" check container --instance "{\"pid\": \"$sp\"}" --log-level error)
echo "$out" | grep -q '"metric":"container.threads"' && ok || bad "string pid refused"

# the process is gone: CRITICAL with the reason, no metrics, the run itself is fine
kill "$sp"
wait "$sp" 2>/dev/null
out=$("$mw" check container --instance "{\"pid\": $sp}" --log-level error)
[ $? -eq 0 ] && ok || bad "check of a gone process exited non-zero"
echo "$out" | grep -q "\"check\":\"container.process.up\",\"status\":2,\"message\":\"process $sp is gone: /proc/$sp/stat: No such file" \
  && ok || bad "no CRITICAL container.process.up for a gone process"
echo "$out" | grep -q '"type":"metric"' && bad "metrics for a gone process" || ok

# no pid, an unresolved template variable, zero: the run fails and says why
for inst in '{}' '{"pid": "%%pid%%"}' '{"pid": 0}' '{"pid": 1.5}'; do
  out=$("$mw" check container --instance "$inst" --log-level off)
  [ $? -eq 1 ] && ok || bad "$inst: did not exit 1"
  echo "$out" | grep -q '"status":2,"message":"[^"]*container.lua:[0-9]*: bad option '"'pid'"': integer from 1 to 4194304 expected, got ' \
    && ok || bad "$inst: no CRITICAL check_status naming the pid option: $out"
done

tally
