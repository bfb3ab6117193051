#!/usr/bin/env bash
# The bundled openmetrics check against real exporters from Debian's
# packages, on loopback ports of their own:
#   1. prometheus-node-exporter: `moonwatch check openmetrics --times 2`
#      gives node.cpu_seconds.count (a monotonic count: kind count, from
#      the second run) tagged cpu/mode/endpoint, node.memory_MemTotal_bytes
#      (a gauge equal to /proc/meminfo's MemTotal), network counters tagged
#      with their device, no untyped metric (node_netstat_*), the health
#      service check OK;
#   2. prometheus (configured to scrape only itself): histogram buckets
#      tagged upper_bound plus .sum/.count, summary quantiles tagged
#      quantile, label tags on prometheus_build_info, metrics renamed and
#      excluded, buckets off;
#   3. `promtool check metrics` accepts both expositions as scraped and
#      the fixtures the unit tests parse (tests/fixtures/openmetrics);
#   4. with the exporter stopped: the run fails, health CRITICAL with the
#      reason; a 404 the same.
#
# usage: openmetrics.sh MOONWATCH_BINARY
# Needs prometheus, prometheus-node-exporter (promtool comes with
# prometheus) and python3, else exits 77 (skipped). No root. Leaves no
# process or file behind.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fix=$(cd "$here/../fixtures/openmetrics" && pwd)

mw=${1:-}
if [ -z "$mw" ] || [ ! -x "$mw" ]; then
  echo "usage: $0 MOONWATCH_BINARY" >&2
  exit 2
fi
for tool in prometheus prometheus-node-exporter promtool python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (apt-get install prometheus prometheus-node-exporter python3)"
    exit 77
  fi
done

pass=0 fail=0 ne_pid='' prom_pid=''
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
not() { ! "$@"; }

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
  stop "$ne_pid"
  stop "$prom_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# fetch URL FILE: the body into FILE; fails unless the status is 200
fetch() {
  python3 - "$1" "$2" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        open(sys.argv[2], "wb").write(r.read())
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

# wait_for DESCRIPTION URL: polls every 0.2 s for up to 30 s
wait_for() {
  local i
  for i in $(seq 150); do
    if fetch "$2" "$tmp/ready"; then
      ok "$1 ready after $((i * 200)) ms"
      return 0
    fi
    sleep 0.2
  done
  bad "$1 not ready within 30 s"
  return 1
}

# promtool: exit 0 or 3 (lint remarks: names, units); 1 is a parse error
promtool_accepts() {
  local rc out
  out=$(promtool check metrics <"$1" 2>&1)
  rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 3 ] || echo "$out" | grep -q "error while linting"; then
    echo "$out" | head -5 >&2
    return 1
  fi
  return 0
}

# q FILE ASSERTION...: python checks over the JSON lines moonwatch printed
# (see the functions below); exits 1 with the reason when one fails.
q() {
  python3 - "$@" <<'EOF'
import json, sys

path, what, *args = sys.argv[1:]
recs = [json.loads(l) for l in open(path) if l.startswith("{")]
metrics = [r for r in recs if r.get("type") == "metric"]

def with_tags(name, tags):
    return [r for r in metrics if r["metric"] == name and set(tags) <= set(r["tags"])]

def fail(msg):
    print("  " + msg, file=sys.stderr)
    sys.exit(1)

if what == "metric":            # NAME KIND TAG...: one such record exists
    name, kind, tags = args[0], args[1], args[2:]
    hits = with_tags(name, tags)
    if not hits:
        fail("no %s with %s" % (name, tags))
    if any(h["kind"] != kind for h in hits):
        fail("%s: kind %s, want %s" % (name, hits[0]["kind"], kind))
elif what == "value":           # NAME VALUE TAG...: the last one's value
    name, want, tags = args[0], float(args[1]), args[2:]
    hits = with_tags(name, tags)
    if not hits or hits[-1]["value"] != want:
        fail("%s: %s, want %s" % (name, hits and hits[-1]["value"], want))
elif what == "tagged":          # NAME KIND TAGPREFIX: a record of NAME has such a tag
    hits = [r for r in metrics if r["metric"] == args[0]
            and any(t.startswith(args[2]) for t in r["tags"])]
    if not hits or any(h["kind"] != args[1] for h in hits):
        fail("no %s %s with a tag %s*" % (args[1], args[0], args[2]))
elif what == "without":         # NAME TAGPREFIX: no record of NAME has such a tag
    hits = [t for r in metrics if r["metric"] == args[0] for t in r["tags"]
            if t.startswith(args[1])]
    if hits or not with_tags(args[0], []):
        fail("%s: %s" % (args[0], hits[:3] or "no record"))
elif what == "none":            # PREFIX: no metric starts with it
    hits = [r["metric"] for r in metrics if r["metric"].startswith(args[0])]
    if hits:
        fail("unexpected %s" % hits[:3])
elif what == "every":           # TAG: every metric carries it
    lacking = [r["metric"] for r in metrics if args[0] not in r["tags"]]
    if lacking or not metrics:
        fail("without %s: %s" % (args[0], lacking[:3]))
elif what == "count":           # MIN: at least MIN metric records
    if len(metrics) < int(args[0]):
        fail("%d metrics" % len(metrics))
elif what == "health":          # NAME STATUS [TEXT]: the last one
    scs = [r for r in recs if r.get("type") == "service_check" and r["check"] == args[0]]
    if not scs or scs[-1]["status"] != int(args[1]):
        fail("%s: %s" % (args[0], scs and scs[-1]))
    if len(args) > 2 and args[2] not in scs[-1]["message"]:
        fail("%s message: %r" % (args[0], scs[-1]["message"]))
else:
    fail("unknown assertion " + what)
EOF
}

run_check() { # run_check OUT INSTANCE-JSON [--times N]
  local out=$1 inst=$2
  shift 2
  "$mw" check openmetrics --instance "$inst" --log-level error "$@" >"$out" 2>"$out.err"
}

# ---------------------------------------------------------------- start

ne_port=$(free_port)
prom_port=$(free_port)
ne_url="http://127.0.0.1:$ne_port/metrics"
prom_url="http://127.0.0.1:$prom_port/metrics"
prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" >"$tmp/node_exporter.log" 2>&1 &
ne_pid=$!
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$prom_port']
EOF
prometheus --config.file="$tmp/prometheus.yml" --web.listen-address="127.0.0.1:$prom_port" \
  --storage.tsdb.path="$tmp/tsdb" >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
wait_for "node-exporter" "$ne_url" || exit 1
wait_for "prometheus" "http://127.0.0.1:$prom_port/-/ready" || exit 1

# ---------------------------------------------------------------- node-exporter

out=$tmp/node.jsonl
inst='{"openmetrics_endpoint":"'$ne_url'","namespace":"node","raw_metric_prefix":"node_","metrics":[".*"]}'
check "node-exporter: two runs succeed" run_check "$out" "$inst" --times 2
check "node.cpu_seconds.count: a monotonic count tagged cpu, mode, endpoint" \
  q "$out" metric node.cpu_seconds.count count cpu:0 mode:idle "endpoint:$ne_url"
memtotal=$(awk '/^MemTotal:/ {printf "%.0f", $2 * 1024}' /proc/meminfo)
check "node.memory_MemTotal_bytes: a gauge equal to /proc/meminfo" \
  q "$out" value node.memory_MemTotal_bytes "$memtotal"
check "node.memory_MemTotal_bytes is a gauge" q "$out" metric node.memory_MemTotal_bytes gauge
check "node.network_receive_bytes.count tagged with its device" \
  q "$out" tagged node.network_receive_bytes.count count device:
check "untyped node_netstat_* are skipped" q "$out" none node.netstat_
check "no _total left in a name" q "$out" none node.cpu_seconds_total
check "every metric tagged with its endpoint" q "$out" every "endpoint:$ne_url"
check "hundreds of series" q "$out" count 200
check "node.openmetrics.health OK" q "$out" health node.openmetrics.health 0
check "node-exporter exposition: promtool accepts it" fetch "$ne_url" "$tmp/node.txt"
check "  ... and promtool accepts it" promtool_accepts "$tmp/node.txt"

# ---------------------------------------------------------------- prometheus

out=$tmp/prom.jsonl
inst='{"openmetrics_endpoint":"'$prom_url'","namespace":"prom","metrics":["^prometheus_http_request_duration_seconds$","^go_gc_duration_seconds$",{"prometheus_build_info":"build"},{"prometheus_http_requests":"requests"}],"exclude_labels":["goarch"],"rename_labels":{"handler":"route"}}'
# A monotonic count is sent from the second value of a series on: the
# series of /metrics requests must exist before the first run.
has_metrics_series() {
  fetch "$prom_url" "$tmp/prom.txt" && grep -q 'handler="/metrics"' "$tmp/prom.txt"
}
for _ in $(seq 50); do
  has_metrics_series && break
  sleep 0.2
done
check "prometheus counts its /metrics requests" has_metrics_series
check "prometheus: two runs succeed" run_check "$out" "$inst" --times 2
check "histogram bucket: monotonic count tagged upper_bound and route" \
  q "$out" metric prom.prometheus_http_request_duration_seconds.bucket count upper_bound:0.1 route:/metrics
check "histogram: no +Inf bucket" \
  q "$out" without prom.prometheus_http_request_duration_seconds.bucket upper_bound:inf
check "histogram .sum and .count are counts" \
  q "$out" metric prom.prometheus_http_request_duration_seconds.count count route:/metrics
check "  ... .sum" q "$out" metric prom.prometheus_http_request_duration_seconds.sum count route:/metrics
check "summary quantile: a gauge tagged quantile" \
  q "$out" metric prom.go_gc_duration_seconds.quantile gauge quantile:0.5
check "summary .count" q "$out" metric prom.go_gc_duration_seconds.count count
check "renamed gauge with label tags, goarch excluded" \
  q "$out" metric prom.build gauge branch:debian/sid
check "  ... no goarch tag" q "$out" without prom.build goarch:
check "renamed counter" q "$out" metric prom.requests.count count code:200 route:/metrics
check "unselected metrics are not sent" q "$out" none prom.prometheus_tsdb
check "prom.openmetrics.health OK" q "$out" health prom.openmetrics.health 0
check "buckets off: no .bucket" run_check "$out" \
  '{"openmetrics_endpoint":"'"$prom_url"'","namespace":"prom","metrics":["prometheus_http_request_duration_seconds"],"collect_histogram_buckets":false}' --times 2
check "  ... none sent" q "$out" none prom.prometheus_http_request_duration_seconds.bucket
check "  ... .count still sent" q "$out" metric prom.prometheus_http_request_duration_seconds.count count
check "prometheus exposition: fetched" fetch "$prom_url" "$tmp/prom.txt"
check "  ... and promtool accepts it" promtool_accepts "$tmp/prom.txt"

# ---------------------------------------------------------------- fixtures

for f in node_exporter.txt prometheus.txt text_0_0_4.txt; do
  check "fixture $f: promtool accepts it" promtool_accepts "$fix/$f"
done
check "fixture malformed.txt: promtool refuses it too" not promtool_accepts "$fix/malformed.txt" 2>/dev/null

# ---------------------------------------------------------------- failures

out=$tmp/fail.jsonl
check "a 404: the run fails" not run_check "$out" \
  '{"openmetrics_endpoint":"http://127.0.0.1:'"$prom_port"'/nothing","namespace":"prom","metrics":[".*"]}'
check "  ... health CRITICAL: 404" q "$out" health prom.openmetrics.health 2 "404 Client Error"
stop "$ne_pid"
ne_pid=''
inst='{"openmetrics_endpoint":"'$ne_url'","namespace":"node","metrics":[".*"]}'
check "node-exporter stopped: the run fails" not run_check "$out" "$inst"
check "  ... health CRITICAL with the reason" q "$out" health node.openmetrics.health 2 "refused"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
