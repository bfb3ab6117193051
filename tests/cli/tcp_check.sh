#!/usr/bin/env bash
# The bundled tcp_check against a listening port (tests/support/httpd.py),
# a closed one, and one whose accept queue is full (connections time
# out): Datadog's service check, metrics, tags and messages, and
# configuration errors. Loopback only; every wait is bounded.
set -u
mw=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# wait_port FILE: waits for a port file, prints the port.
wait_port() {
  for _ in $(seq 1 100); do
    [ -s "$1" ] && break
    sleep 0.05
  done
  [ -s "$1" ] || { echo "no port in $1" >&2; exit 1; }
  cat "$1"
}

# check JSON: runs tcp_check once, sets $out and $rc.
check() {
  out=$(timeout 20 "$mw" check tcp_check --checks-dir "$src/checks" --no-bundled \
    --instance "$1" --log-level off 2>> "$tmp/stderr")
  rc=$?
}

# get TYPE NAME FIELD: FIELD of the last TYPE record named NAME in $out
# (tags joined with spaces); empty when there is none.
get() {
  echo "$out" | python3 -c 'import json, sys
kind, name, field = sys.argv[1:]
key = "metric" if kind == "metric" else "check"
val = None
for line in sys.stdin:
    r = json.loads(line)
    if r.get("type") == kind and r.get(key) == name:
        val = r.get(field)
if isinstance(val, list):
    val = " ".join(val)
print("" if val is None else val)' "$@"
}

has_tag() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }

python3 "$src/tests/support/httpd.py" --port-file "$tmp/httpd.port" > /dev/null 2>&1 &
pids+=($!)
P=$(wait_port "$tmp/httpd.port")

# --- up ------------------------------------------------------------------
check '{"name":"web (main)","host":"127.0.0.1","port":'$P',"collect_response_time":true,"tags":["env:test"]}'
[ $rc -eq 0 ] && ok || bad "up: exit $rc"
[ "$(get service_check tcp.can_connect status)" = 0 ] && ok || bad "up: not OK: $out"
[ -z "$(get service_check tcp.can_connect message)" ] && ok || bad "up: OK has a message"
tags=$(get service_check tcp.can_connect tags)
for t in target_host:127.0.0.1 "port:$P" instance:web_main address:127.0.0.1 env:test; do
  has_tag "$tags" "$t" && ok || bad "up: no $t in service check tags: $tags"
done
[ "$(get metric network.tcp.can_connect value)" = 1 ] && ok || bad "up: can_connect gauge"
[ "$(get metric network.tcp.can_connect tags)" = "$tags" ] && ok || bad "up: gauge tags differ"
rt=$(get metric network.tcp.response_time value)
python3 -c "import sys; sys.exit(not (0 < float('${rt:-0}') < 5))" && ok || bad "up: response_time '$rt'"
tags=$(get metric network.tcp.response_time tags)
has_tag "$tags" "url:127.0.0.1:$P" && has_tag "$tags" "instance:web (main)" && ok \
  || bad "up: response_time tags: $tags"

# a quoted port (as "%%port%%" may arrive) and no response time by default
check '{"name":"web","host":"127.0.0.1","port":"'$P'"}'
[ "$(get service_check tcp.can_connect status)" = 0 ] && ok || bad "quoted port: not OK"
[ -z "$(get metric network.tcp.response_time value)" ] && ok || bad "response_time without collect_response_time"

# --- refused -------------------------------------------------------------
closed=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')
check '{"name":"gone","host":"127.0.0.1","port":'$closed'}'
[ $rc -eq 0 ] && ok || bad "refused: the check itself failed ($rc)"
[ "$(get service_check tcp.can_connect status)" = 2 ] && ok || bad "refused: not CRITICAL"
get service_check tcp.can_connect message \
  | grep -q "^connect to 127.0.0.1:$closed: .*refused.*\. Connection failed after [0-9]* ms$" && ok \
  || bad "refused message: $(get service_check tcp.can_connect message)"
[ "$(get metric network.tcp.can_connect value)" = 0 ] && ok || bad "refused: can_connect gauge"

# --- timed out: a listener whose accept queue is full drops new SYNs ------
python3 -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
fill = []
for _ in range(8):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(s.getsockname())
    fill.append(c)
time.sleep(0.2)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)' "$tmp/full.port" &
pids+=($!)
F=$(wait_port "$tmp/full.port")
start=$(date +%s%N)
check '{"name":"full","host":"127.0.0.1","port":'$F',"timeout":1}'
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 2500 ] && ok || bad "timeout took $ms ms"
[ "$(get service_check tcp.can_connect status)" = 2 ] && ok || bad "timeout: not CRITICAL: $out"
get service_check tcp.can_connect message | grep -q "^Socket error: .*timed out.*\. The connection timed out after [0-9]* ms$" \
  && ok || bad "timeout message: $(get service_check tcp.can_connect message)"
[ "$(get service_check moonwatch.check_status status)" = 0 ] && ok || bad "timeout: the run was stopped"

# --- configuration errors --------------------------------------------------
# bad_option JSON MESSAGE: the run fails with MESSAGE (one format, from the
# check's line), nothing is connected to
bad_option() {
  check "$1"
  local msg
  msg=$(get service_check moonwatch.check_status message)
  [ $rc -eq 1 ] && [ -z "$(get service_check tcp.can_connect status)" ] \
    && printf '%s\n' "$msg" | grep -qF "$2" \
    && printf '%s\n' "$msg" | grep -q "tcp_check.lua:[0-9]*: bad option '" \
    && ok || bad "$1: want '$2', got '$msg'"
}
bad_option '{"name":"x","host":"127.0.0.1","port":"http"}' \
  "bad option 'port': integer from 1 to 65535 expected, got string \"http\""
bad_option '{"name":"x","host":"127.0.0.1","port":70000}' \
  "bad option 'port': integer from 1 to 65535 expected, got number 70000"
bad_option '{"name":"x","host":"127.0.0.1"}' \
  "bad option 'port': integer from 1 to 65535 expected, got no value"
bad_option '{"name":"x","port":80}' "bad option 'host': non-empty string expected, got no value"
bad_option '{"host":"127.0.0.1","port":80}' "bad option 'name': non-empty string expected, got no value"
bad_option '{"name":"x","host":"127.0.0.1","port":'$P',"collect_response_time":"maybe"}' \
  "bad option 'collect_response_time': boolean expected, got string \"maybe\""
bad_option '{"name":"x","host":"127.0.0.1","port":'$P',"collect_response_time":""}' \
  "bad option 'collect_response_time': boolean expected, got string \"\""
# the words YAML users write are taken
check '{"name":"x","host":"127.0.0.1","port":'$P',"collect_response_time":"YES"}'
[ -n "$(get metric network.tcp.response_time value)" ] && ok || bad "collect_response_time YES: $out"

# nothing on stderr: no log line, no sanitizer report
[ ! -s "$tmp/stderr" ] && ok || { bad "stderr:"; head -50 "$tmp/stderr" >&2; }

tally
