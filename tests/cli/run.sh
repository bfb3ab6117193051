#!/usr/bin/env bash
# `moonwatch run`: a config file and flags, checks on their schedule,
# JSON lines flushed, a clean stop on SIGINT with a last flush.
set -u
mw=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/checks" "$tmp/templates/ticker.d"
cat > "$tmp/checks/ticker.lua" <<'LUA'
local c = {}
function c.init(self) self.n = 0 end
function c.run(self)
  self.n = self.n + 1
  mw.monotonic_count("ticker.total", self.n * 10)
  mw.gauge("ticker.runs", self.n)
end
return c
LUA
printf 'instances:\n  - min_collection_interval: 1\n    tags: ["from:file"]\n' \
  > "$tmp/templates/ticker.d/conf.yaml"
cat > "$tmp/moonwatch.yaml" <<EOF2
flush_interval: 1
log_level: warn
hostname: test-host
no_bundled: true
checks_dirs: ["$tmp/checks"]
templates_dirs: ["$tmp/templates"]
EOF2

# flags override the file: the flush interval comes from the command line
"$mw" run -c "$tmp/moonwatch.yaml" --flush-interval 0.5 > "$tmp/out" 2> "$tmp/err" &
pid=$!
for _ in $(seq 1 60); do
  [ "$(grep -c '"metric":"ticker.runs"' "$tmp/out")" -ge 3 ] && break
  sleep 0.1
done
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 0 ] && ok || bad "run exited $rc on SIGINT"
[ "$(grep -c '"metric":"ticker.runs"' "$tmp/out")" -ge 3 ] && ok || bad "fewer than 3 flushes of ticker.runs"
grep -q '"metric":"ticker.runs","kind":"gauge","value":2,' "$tmp/out" && ok || bad "no second run"
grep -q '"metric":"ticker.total","kind":"count","value":10,' "$tmp/out" && ok || bad "monotonic_count delta"
grep -q '"interval":0.5,"tags":\["from:file"\],"host":"test-host","check":"ticker"' "$tmp/out" \
  && ok || bad "interval, tags or host wrong"
python3 -c 'import json,sys
for l in open(sys.argv[1]): json.loads(l)' "$tmp/out" && ok || bad "a line is not JSON"
[ ! -s "$tmp/err" ] && ok || { bad "unexpected log output"; cat "$tmp/err" >&2; }

# a bad config file is reported with its position, and run refuses to start
printf 'flush_interval: soon\n' > "$tmp/bad.yaml"
"$mw" run -c "$tmp/bad.yaml" > /dev/null 2> "$tmp/err"
rc=$?
[ $rc -ne 0 ] && grep -q "bad.yaml:1:[0-9]*: flush_interval" "$tmp/err" && ok \
  || { bad "bad config not reported (rc=$rc)"; cat "$tmp/err" >&2; }

tally
