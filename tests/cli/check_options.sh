#!/usr/bin/env bash
# Option errors of the bundled nginx, mcache, redisdb and openmetrics
# checks (their servers are not needed: the options are read in init(),
# before any I/O): each bad option fails the run with moonwatch.check_status
# CRITICAL, in mw.opt's one format, from the check's line, and nothing is
# connected to. Then the forms the old parsers took (string booleans,
# quoted numbers, older spellings) are taken: the run goes on to the
# connection, which fails on a closed 127.0.0.1 port.
set -u
mw=$1
src=$2
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A port nothing listens on: bound, then closed.
closed=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')

# run CHECK JSON: one run; the JSON lines in $out, the exit status in $rc.
run() {
  out=$(timeout 20 "$mw" check "$1" --checks-dir "$src/checks" --no-bundled --instance "$2" \
    --log-level off 2>> "$tmp/stderr")
  rc=$?
}

# status NAME: "STATUS MESSAGE" of the last service check NAME in $out.
status() {
  echo "$out" | python3 -c 'import json, sys
last = ""
for line in sys.stdin:
    r = json.loads(line)
    if r.get("type") == "service_check" and r.get("check") == sys.argv[1]:
        last = "%d %s" % (r["status"], r.get("message", ""))
print(last)' "$1"
}

# refused CHECK JSON MESSAGE: the run fails with MESSAGE, nothing else is sent.
refused() {
  run "$1" "$2"
  local got
  got=$(status moonwatch.check_status)
  if [ $rc -eq 1 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] &&
    [[ "$got" == "2 "*"/$1.lua:"[0-9]*": $3" ]]; then
    ok
  else
    bad "$1 $2: want '$3', got exit $rc, '$got' in: $out"
  fi
}

# taken CHECK JSON SERVICE_CHECK: no option error; SERVICE_CHECK says the
# closed port could not be reached.
taken() {
  run "$1" "$2"
  local got
  got=$(status "$3")
  if [[ "$got" == "2 "* ]] && ! echo "$out" | grep -q "bad option"; then
    ok
  else
    bad "$1 $2: want $3 CRITICAL, got '$got' in: $out"
  fi
}

# --- nginx -----------------------------------------------------------------
u='"nginx_status_url":"http://127.0.0.1:'$closed'/nginx_status"'
refused nginx "{$u,\"tls_verify\":\"maybe\"}" \
  "bad option 'tls_verify': boolean expected, got string \"maybe\""
refused nginx "{$u,\"ssl_validation\":\"\"}" \
  "bad option 'ssl_validation': boolean expected, got string \"\""
refused nginx "{$u,\"use_plus_api\":\"maybe\"}" \
  "bad option 'use_plus_api': boolean expected, got string \"maybe\""
refused nginx "{$u,\"use_vts\":true}" \
  "bad option 'use_vts': not supported: point nginx_status_url at a stub_status page"
refused nginx "{$u,\"headers\":\"X-A: b\"}" \
  "bad option 'headers': mapping expected, got string \"X-A: b\""
refused nginx "{$u,\"username\":true,\"password\":\"x\"}" \
  "bad option 'username': string expected, got boolean true"
refused nginx '{"nginx_status_url":"ftp://127.0.0.1/"}' \
  "bad option 'nginx_status_url': http:// or https:// URL expected, got string \"ftp://127.0.0.1/\""
refused nginx '{}' "bad option 'nginx_status_url': http:// or https:// URL expected, got no value"
taken nginx "{$u,\"tls_verify\":\"no\",\"use_plus_api\":\"off\",\"headers\":{\"X-A\":1},\"user\":\"mon\",\"password\":1234}" \
  nginx.can_connect

# --- mcache ----------------------------------------------------------------
refused mcache '{"url":"127.0.0.1","options":{"items":"maybe"}}' \
  "bad option 'options.items': boolean expected, got string \"maybe\""
refused mcache '{"url":"127.0.0.1","options":"items"}' \
  "bad option 'options': mapping expected, got string \"items\""
refused mcache '{"url":"127.0.0.1","port":"memcache"}' \
  "bad option 'port': integer from 1 to 65535 expected, got string \"memcache\""
refused mcache '{}' "bad option 'url': non-empty string expected, got no value"
refused mcache '{"url":""}' "bad option 'url': non-empty string expected, got string \"\""
refused mcache '{"url":"127.0.0.1","socket":"/run/memcached.sock"}' \
  "bad option 'socket': not supported: set url (and port)"
taken mcache '{"url":"127.0.0.1","port":"'$closed'","options":{"items":"yes","slabs":0},"username":"mon","password":1}' \
  memcache.can_connect

# --- redisdb ---------------------------------------------------------------
r='"host":"127.0.0.1","port":'$closed
refused redisdb "{$r,\"ssl\":\"maybe\"}" "bad option 'ssl': boolean expected, got string \"maybe\""
refused redisdb "{$r,\"command_stats\":2}" "bad option 'command_stats': boolean expected, got number 2"
refused redisdb "{$r,\"socket_timeout\":\"soon\"}" \
  "bad option 'socket_timeout': number >= 0.001 expected, got string \"soon\""
refused redisdb "{$r,\"ssl_cert_reqs\":\"required\"}" \
  "bad option 'ssl_cert_reqs': integer from 0 to 2 expected, got string \"required\""
refused redisdb "{$r,\"db\":-1}" "bad option 'db': integer >= 0 expected, got number -1"
refused redisdb "{$r,\"keys\":{\"a\":\"b\"}}" "bad option 'keys': list expected, got mapping"
refused redisdb "{$r,\"keys\":[\"a\",true]}" "bad option 'keys[2]': string expected, got boolean true"
refused redisdb "{$r,\"unix_socket_path\":\"/run/redis.sock\"}" \
  "bad option 'unix_socket_path': not supported: set host and port"
refused redisdb '{"port":6379}' "bad option 'host': non-empty string expected, got no value"
refused redisdb '{"host":"127.0.0.1","port":"redis"}' \
  "bad option 'port': integer from 1 to 65535 expected, got string \"redis\""
taken redisdb "{\"host\":\"127.0.0.1\",\"port\":\"$closed\",\"ssl\":\"off\",\"ssl_cert_reqs\":\"0\",\"keys\":\"k1\",\"socket_timeout\":\"1\",\"db\":\"0\"}" \
  redis.can_connect

# --- openmetrics -----------------------------------------------------------
e='"openmetrics_endpoint":"http://127.0.0.1:'$closed'/metrics","namespace":"x","metrics":[".*"]'
refused openmetrics "{$e,\"tls_verify\":\"maybe\"}" \
  "bad option 'tls_verify': boolean expected, got string \"maybe\""
refused openmetrics "{$e,\"send_histograms_buckets\":\"maybe\"}" \
  "bad option 'send_histograms_buckets': boolean expected, got string \"maybe\""
refused openmetrics "{$e,\"connect_timeout\":0}" \
  "bad option 'connect_timeout': number >= 0.001 expected, got number 0"
refused openmetrics "{$e,\"username\":\"mon\"}" "bad option 'password': required with username"
refused openmetrics "{$e,\"extra_headers\":[\"X-A\"]}" "bad option 'extra_headers': mapping expected, got list"
refused openmetrics '{"prometheus_url":"not a url","namespace":"x","metrics":[".*"]}' \
  "bad option 'prometheus_url': http:// or https:// URL expected, got string \"not a url\""
refused openmetrics '{"openmetrics_endpoint":"http://127.0.0.1:1/metrics","metrics":[".*"]}' \
  "bad option 'namespace': non-empty string expected, got no value"
refused openmetrics '{"openmetrics_endpoint":"http://127.0.0.1:1/metrics","namespace":"x"}' \
  "bad option 'metrics': list of metric names or regular expressions ([\".*\"]: every metric) expected, got no value"
refused openmetrics '{"openmetrics_endpoint":"http://127.0.0.1:1/metrics","namespace":"x","metrics":"go_"}' \
  "bad option 'metrics': must be a list"
taken openmetrics "{$e,\"tls_verify\":\"ON\",\"send_histograms_buckets\":\"n\",\"timeout\":2,\"headers\":{\"X-A\":\"b\"}}" \
  x.openmetrics.health

# nothing on stderr: no log line, no sanitizer report
[ ! -s "$tmp/stderr" ] && ok || { bad "stderr:"; head -50 "$tmp/stderr" >&2; }

tally
