#!/usr/bin/env bash
# `prometheus` in the `sink` list: it needs `listen` (refused without it,
# naming both keys, from a flag, the environment or the config file);
# listed alone it is the only sink (no JSON lines); with stdout, both.
# And what stays as it was: `listen` alone serves /metrics beside
# stdout, and `sink: none` with `listen` still serves it. Every wait is
# bounded; every address is 127.0.0.1.
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
for v in $(env | sed -n 's/^\(\(MW\|DD\)_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
command -v curl > /dev/null || { echo "no curl"; exit 77; }

mkdir -p "$tmp/checks" "$tmp/templates/probe.d"
cat > "$tmp/checks/probe.lua" <<'LUA'
return { run = function(self) mw.gauge("probe.temp", 21.5) end }
LUA
printf 'instances:\n  - min_collection_interval: 0.5\n' > "$tmp/templates/probe.d/conf.yaml"
common=(--no-bundled --checks-dir "$tmp/checks" --templates-dir "$tmp/templates"
        --flush-interval 0.5 --set docker=off --set ecs=off --set "state_dir=$tmp/state")

# --- without listen: refused, whichever way it was said
want='sink: prometheus needs listen'
"$mw" run "${common[@]}" --sink prometheus > "$tmp/out" 2> "$tmp/err"
rc=$?
[ $rc -ne 0 ] && grep -q "$want" "$tmp/err" && ok || bad "--sink prometheus without listen (rc=$rc): $(cat "$tmp/err")"
[ -s "$tmp/out" ] && bad "records printed though refused" || ok
MW_SINK=stdout,prometheus "$mw" run "${common[@]}" > /dev/null 2> "$tmp/err"
[ $? -ne 0 ] && grep -q "$want" "$tmp/err" && ok || bad "MW_SINK=stdout,prometheus without listen"
printf 'sink: [prometheus]\n' > "$tmp/mw.yaml"
"$mw" run -c "$tmp/mw.yaml" "${common[@]}" > /dev/null 2> "$tmp/err"
[ $? -ne 0 ] && grep -q "$want" "$tmp/err" && ok || bad "sink: [prometheus] in a file without listen"
"$mw" run "${common[@]}" --sink stdout,prom > /dev/null 2> "$tmp/err"
[ $? -ne 0 ] && grep -q 'expected a list of stdout, datadog, prometheus or none, got "prom"' \
  "$tmp/err" && ok || bad "an unknown sink: $(cat "$tmp/err")"
[ "$("$mw" config --sink prometheus | awk '$1 == "sink" { print $2, $3 }')" = \
  "prometheus (flag:--sink)" ] && ok || bad "config does not show sink: prometheus"
# `check` prints JSON lines whatever the list says: nothing to refuse
"$mw" check probe "${common[@]}" --sink prometheus > "$tmp/out" 2> "$tmp/err"
grep -q '"metric":"probe.temp"' "$tmp/out" && ok || bad "check with --sink prometheus: $(cat "$tmp/err")"

# start ARGS...: run with ARGS; $base is its listener, once /metrics has probe_temp
start() {
  : > "$tmp/err" # here: the background run empties it only once it has started
  "$mw" run "${common[@]}" --listen 127.0.0.1:0 "$@" > "$tmp/out" 2> "$tmp/err" &
  pid=$!
  base="http://$(listener_addr "$tmp/err")"
  for _ in $(seq 1 100); do
    curl -s -m 2 "$base/metrics" | grep -q '^probe_temp{' && return 0
    sleep 0.1
  done
  return 1
}
stop() {
  kill -TERM "$pid"
  wait "$pid"
  pid=
}
sinks() { curl -s -m 5 "$base/status" | python3 -c 'import json,sys; print(",".join(s["name"] for s in json.load(sys.stdin)["sinks"]))'; }

# --- listed with listen: the only sink
start --sink prometheus && ok || bad "--sink prometheus --listen: no /metrics: $(cat "$tmp/err")"
[ "$(sinks)" = prometheus ] && ok || bad "sinks: $(sinks)"
stop
[ -s "$tmp/out" ] && bad "--sink prometheus printed JSON lines" || ok

# --- with stdout: both
start --sink stdout,prometheus && ok || bad "--sink stdout,prometheus: no /metrics"
[ "$(sinks)" = stdout,prometheus ] && ok || bad "sinks: $(sinks)"
stop
grep -q '"metric":"probe.temp"' "$tmp/out" && ok || bad "stdout,prometheus: no JSON lines"

# --- as before: listen alone is stdout and /metrics; sink: none keeps /metrics
start && ok || bad "--listen alone: no /metrics"
[ "$(sinks)" = stdout,prometheus ] && ok || bad "sinks: $(sinks)"
stop
grep -q '"metric":"probe.temp"' "$tmp/out" && ok || bad "--listen alone: no JSON lines"
start --sink none && ok || bad "--sink none --listen: no /metrics: $(cat "$tmp/err")"
stop
[ -s "$tmp/out" ] && bad "--sink none printed JSON lines" || ok

tally
