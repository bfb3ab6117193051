#!/usr/bin/env bash
# The status listener: `moonwatch run --listen 127.0.0.1:0` serves
# /status, /healthz and /metrics; `moonwatch status` renders /status;
# /metrics is the Prometheus text format (checked by promtool when it is
# installed); addresses beyond loopback are refused; a unix socket works.
# Every wait is bounded.
set -u
mw=$1
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2> /dev/null && wait "$pid" 2> /dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
# shellcheck source-path=SCRIPTDIR source=lib/listener.sh
. "$(dirname "$0")/lib/listener.sh"

mkdir -p "$tmp/checks" "$tmp/templates/probe.d"
cat > "$tmp/checks/probe.lua" <<'LUA'
return { run = function(self)
  mw.gauge("probe.temp", 21.5, {"room:lab \"b\"", "floor"})
  mw.count("probe.hits", 2)
  mw.service_check("probe.up", mw.WARNING, {"a:b"}, "half")
end }
LUA
printf 'instances:\n  - min_collection_interval: 1\n' > "$tmp/templates/probe.d/conf.yaml"

"$mw" run --no-bundled --checks-dir "$tmp/checks" --templates-dir "$tmp/templates" \
  --flush-interval 0.5 --sink none --set docker=off --set ecs=off \
  --listen 127.0.0.1:0 > "$tmp/out" 2> "$tmp/err" &
pid=$!
addr=$(listener_addr "$tmp/err") && ok || bad "no listener in the log"
base="http://$addr"
for _ in $(seq 1 50); do
  curl -s -m 2 "$base/metrics" | grep -q '^probe_hits_total' && break
  sleep 0.1
done

curl -s -m 5 "$base/metrics" > "$tmp/metrics"
grep -q '^# TYPE probe_temp gauge$' "$tmp/metrics" && ok || bad "no probe_temp gauge"
grep -q '^probe_temp{floor="true",host="[^"]*",room="lab \\"b\\""} 21.5$' "$tmp/metrics" \
  && ok || { bad "probe_temp labels"; cat "$tmp/metrics" >&2; }
grep -q '^# TYPE probe_hits_total counter$' "$tmp/metrics" && ok || bad "no counter"
grep -q '^moonwatch_service_check_status{a="b",check="probe.up",host="[^"]*"} 1$' \
  "$tmp/metrics" && ok || bad "service check status"
if command -v promtool > /dev/null; then
  promtool check metrics < "$tmp/metrics" > "$tmp/promtool" 2>&1 && ok \
    || { bad "promtool check metrics"; cat "$tmp/promtool" >&2; }
fi
ct=$(curl -s -m 5 -o /dev/null -w '%{content_type}' "$base/metrics")
[ "$ct" = "text/plain; version=0.0.4; charset=utf-8" ] && ok || bad "content type '$ct'"

[ "$(curl -s -m 5 "$base/healthz")" = ok ] && ok || bad "/healthz not ok"
[ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$base/nope")" = 404 ] && ok || bad "404"
[ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST "$base/status")" = 405 ] \
  && ok || bad "405"

curl -s -m 5 "$base/status" > "$tmp/status.json"
python3 - "$tmp/status.json" <<'PY' && ok || bad "/status shape"
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("version", "uptime_seconds", "health", "sources", "services", "instances",
          "unresolved", "sinks", "memory", "totals"):
    assert k in d, k
assert d["health"]["status"] == "ok"
assert [s["name"] for s in d["sinks"]] == ["prometheus"]
i = d["instances"][0]
assert i["check"] == "probe" and i["runs"] >= 1
for k in ("last_run", "last_duration", "last_error", "errors", "samples"):
    assert k in i, k
assert d["memory"]["rss_bytes"] > 0 and d["memory"]["lua_bytes"] > 0
PY

"$mw" status --listen "$addr" > "$tmp/human"
rc=$?
[ $rc -eq 0 ] && ok || bad "status exited $rc"
grep -q '^moonwatch .* health: ok$' "$tmp/human" && ok || { bad "status header"; cat "$tmp/human" >&2; }
grep -Eq '^  probe:[0-9a-f]+ +[0-9]+ +0 ' "$tmp/human" && ok || bad "status instance row"
grep -q $'\033' "$tmp/human" && bad "colours when not a terminal" || ok
"$mw" status --listen "$addr" --json | python3 -c 'import json,sys; json.load(sys.stdin)' \
  && ok || bad "status --json is not JSON"

# the one-shot commands leave the config file's listen address to the daemon
printf 'listen: "%s"\n' "$addr" > "$tmp/mw.yaml"
"$mw" check probe -c "$tmp/mw.yaml" --no-bundled --checks-dir "$tmp/checks" \
  > "$tmp/check.out" 2> "$tmp/check.err" && ok \
  || { bad "check with listen: in its config"; cat "$tmp/check.err" >&2; }
"$mw" status -c "$tmp/mw.yaml" > /dev/null && ok || bad "status with -c"

kill -INT $pid
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] && ok || bad "run exited $rc"
"$mw" status --listen "$addr" > /dev/null 2> "$tmp/err2"
[ $? -eq 2 ] && grep -q 'no status from' "$tmp/err2" && ok || bad "status of a stopped engine"

# beyond loopback only when said explicitly
"$mw" run --no-bundled --set docker=off --listen 0.0.0.0:0 > /dev/null 2> "$tmp/err3"
[ $? -ne 0 ] && grep -q 'not a loopback address' "$tmp/err3" && ok || bad "0.0.0.0 accepted"
"$mw" run --no-bundled --set docker=off --listen '[::]:0' > /dev/null 2> "$tmp/err3"
[ $? -ne 0 ] && ok || bad ":: accepted"

# a unix socket
"$mw" run --no-bundled --checks-dir "$tmp/checks" --templates-dir "$tmp/templates" \
  --sink none --set docker=off --set ecs=off --listen "$tmp/status.sock" \
  > /dev/null 2> "$tmp/err4" &
pid=$!
for _ in $(seq 1 100); do [ -S "$tmp/status.sock" ] && break; sleep 0.1; done
"$mw" status --listen "$tmp/status.sock" > "$tmp/human2" && ok || bad "status over a unix socket"
[ "$(curl -s -m 5 --unix-socket "$tmp/status.sock" http://x/healthz)" = ok ] && ok \
  || bad "/healthz over a unix socket"
kill -INT $pid
wait $pid
pid=
[ ! -e "$tmp/status.sock" ] && ok || bad "socket left behind"

tally
