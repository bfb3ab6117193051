#!/usr/bin/env bash
# The Prometheus sink end to end: moonwatch runs a check that emits a
# gauge, a count and a service check, with `--listen 127.0.0.1:PORT`;
# `promtool check metrics` validates its /metrics; then a real Prometheus
# (Debian's `prometheus`), started here on 127.0.0.1 with a temporary
# config that scrapes moonwatch every second, is asked through its HTTP
# API for what moonwatch sent: the gauge with its labels, the counter
# (kept across flushes: it only grows), the service check status, and
# the scrape target up. Every wait is bounded (30 s at most).
#
# Needs prometheus, promtool and python3, else exits 77 (skipped). No
# root. Leaves no process or file behind.
set -uo pipefail

mw=${1:-}
if [ -z "$mw" ] || [ ! -x "$mw" ]; then
  echo "usage: $0 MOONWATCH_BINARY" >&2
  exit 2
fi
for tool in prometheus promtool python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (apt-get install prometheus python3)"
    exit 77
  fi
done

pass=0 fail=0 mw_pid='' prom_pid=''
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

tmp=$(mktemp -d)
stop() { # stop PID: TERM, then KILL after 5 s
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}
cleanup() {
  stop "$prom_pid"
  stop "$mw_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# fetch URL FILE: the body into FILE; fails unless the status is 200
fetch() {
  python3 - "$1" "$2" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        open(sys.argv[2], "wb").write(r.read())
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

# wait_for WHAT URL: up to 30 s for a 200
wait_for() {
  local i
  for i in $(seq 300); do
    fetch "$2" "$tmp/wait" && return 0
    sleep 0.1
  done
  echo "FAIL: $1 did not answer at $2 within 30 s" >&2
  return 1
}

# ---------------------------------------------------------------- moonwatch
mkdir -p "$tmp/checks" "$tmp/templates/e2e.d"
cat >"$tmp/checks/e2e.lua" <<'LUA'
return { run = function(self)
  mw.gauge("e2e.temperature", 21.5, {"room:lab", "floor:2", "indoor"})
  mw.count("e2e.requests", 3, {"code:200"})
  mw.rate("e2e.load", 0.5)
  mw.histogram("e2e.latency", 0.25)
  mw.service_check("e2e.reachable", mw.WARNING, {"target:db"}, "slow")
end }
LUA
printf 'instances:\n  - min_collection_interval: 1\n' >"$tmp/templates/e2e.d/conf.yaml"

mw_port=$(free_port)
prom_port=$(free_port)
"$mw" run --no-bundled --checks-dir "$tmp/checks" --templates-dir "$tmp/templates" \
  --flush-interval 1 --sink none --hostname e2e-host --set docker=off --set ecs=off \
  --listen "127.0.0.1:$mw_port" >"$tmp/mw.out" 2>"$tmp/mw.log" &
mw_pid=$!
wait_for moonwatch "http://127.0.0.1:$mw_port/healthz" || exit 1
for i in $(seq 100); do
  fetch "http://127.0.0.1:$mw_port/metrics" "$tmp/metrics" && grep -q '^e2e_requests_total' "$tmp/metrics" && break
  sleep 0.1
done
check "/metrics carries the check's series" grep -q '^e2e_temperature{' "$tmp/metrics"
if promtool check metrics <"$tmp/metrics" >"$tmp/promtool.out" 2>&1; then
  ok "promtool check metrics"
else
  bad "promtool check metrics"
  cat "$tmp/promtool.out" "$tmp/metrics" >&2
fi

# ---------------------------------------------------------------- prometheus
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: moonwatch
    static_configs:
      - targets: ['127.0.0.1:$mw_port']
YML
prometheus --config.file="$tmp/prometheus.yml" --web.listen-address="127.0.0.1:$prom_port" \
  --storage.tsdb.path="$tmp/tsdb" >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
wait_for prometheus "http://127.0.0.1:$prom_port/-/ready" || { cat "$tmp/prometheus.log" >&2; exit 1; }

# query EXPR: the first result's value (empty when none), on stdout
query() {
  python3 - "http://127.0.0.1:$prom_port/api/v1/query" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "?" + urllib.parse.urlencode({"query": sys.argv[2]})
try:
    with urllib.request.urlopen(url, timeout=5) as r:
        d = json.load(r)
except Exception:
    sys.exit(0)
res = d.get("data", {}).get("result", [])
if res:
    print(res[0]["value"][1])
PY
}

# until_value EXPR: up to 30 s for a result; prints it
until_value() {
  local i v
  for i in $(seq 60); do
    v=$(query "$1")
    [ -n "$v" ] && { echo "$v"; return 0; }
    sleep 0.5
  done
  return 1
}

v=$(until_value 'up{job="moonwatch"} == 1')
check "Prometheus scrapes moonwatch (up == 1)" [ "$v" = 1 ]
v=$(until_value 'e2e_temperature{room="lab",floor="2",indoor="true",host="e2e-host"}')
check "Prometheus has the gauge with its labels (got '$v')" [ "$v" = 21.5 ]
v=$(until_value 'moonwatch_service_check_status{check="e2e.reachable",target="db"}')
check "Prometheus has the service check status, WARNING (got '$v')" [ "$v" = 1 ]
v=$(until_value 'e2e_load')
check "rate as a gauge (got '$v')" [ -n "$v" ]
v=$(until_value 'e2e_latency_max')
check "histogram aggregate as a gauge (got '$v')" [ "$v" = 0.25 ]
first=$(until_value 'e2e_requests_total{code="200"}')
sleep 3
later=$(until_value 'e2e_requests_total{code="200"}')
check "the counter grows across flushes ($first, then $later)" \
  python3 -c "import sys; sys.exit(0 if float('$later') > float('$first') >= 3 else 1)"
v=$(until_value 'sum(rate(e2e_requests_total[10s])) > 0')
check "rate() over the counter is positive (got '$v')" [ -n "$v" ]

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
