#!/usr/bin/env bash
# The bundled http_check against a local server (tests/support/httpd.py),
# plain and TLS (a self-signed certificate made here that ends in 10
# days): Datadog's metric and service check names, tags and messages,
# status patterns, content matching, refused and timed-out connections,
# redirects, request method/body/headers, certificate expiration and
# verification, and configuration errors. Loopback only; every wait is
# bounded.
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

# start_httpd NAME [ARGS...]: starts httpd.py, sets $port.
start_httpd() {
  local name=$1
  shift
  python3 "$src/tests/support/httpd.py" --port-file "$tmp/$name.port" "$@" \
    > /dev/null 2> "$tmp/$name.err" &
  pids+=($!)
  for _ in $(seq 1 100); do
    [ -s "$tmp/$name.port" ] && break
    sleep 0.05
  done
  if [ ! -s "$tmp/$name.port" ]; then
    echo "httpd $name did not start" >&2
    cat "$tmp/$name.err" >&2
    exit 1
  fi
  port=$(cat "$tmp/$name.port")
}

# A port nothing listens on: bound, then closed.
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# check JSON: runs http_check once, sets $out and $rc.
check() {
  out=$(timeout 20 "$mw" check http_check --checks-dir "$src/checks" --no-bundled \
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

start_httpd plain
P=$port
base="http://127.0.0.1:$P"

# --- 200: OK, Datadog's metrics and tags ---------------------------------
check '{"name":"local ok","url":"'$base'/ok","tags":["env:test"]}'
[ $rc -eq 0 ] && ok || bad "ok: exit $rc"
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "ok: can_connect not OK: $out"
[ -z "$(get service_check http.can_connect message)" ] && ok || bad "ok: OK has a message"
tags=$(get service_check http.can_connect tags)
has_tag "$tags" "url:$base/ok" && has_tag "$tags" "instance:local_ok" && has_tag "$tags" "env:test" \
  && ok || bad "ok: service check tags: $tags"
tags=$(get metric network.http.response_time tags)
has_tag "$tags" "url:$base/ok" && has_tag "$tags" "instance:local_ok" && ok || bad "ok: metric tags: $tags"
rt=$(get metric network.http.response_time value)
python3 -c "import sys; sys.exit(not (0 < float('${rt:-0}') < 5))" && ok || bad "ok: response_time '$rt'"
[ "$(get metric network.http.can_connect value)" = 1 ] && ok || bad "ok: can_connect gauge"
[ "$(get metric network.http.cant_connect value)" = 0 ] && ok || bad "ok: cant_connect gauge"
[ -z "$(get service_check http.ssl_cert status)" ] && ok || bad "ok: http URL has an ssl_cert check"
[ "$(get service_check moonwatch.check_status status)" = 0 ] && ok || bad "ok: check_status"

# collect_response_time false: no response time
check '{"name":"n","url":"'$base'/ok","collect_response_time":false}'
[ -z "$(get metric network.http.response_time value)" ] && ok || bad "collect_response_time false"

# a url: tag of the instance replaces the check's
check '{"name":"n","url":"'$base'/ok","tags":["url:mine"]}'
tags=$(get service_check http.can_connect tags)
has_tag "$tags" "url:mine" && ! has_tag "$tags" "url:$base/ok" && ok || bad "url tag not replaced: $tags"

# --- status codes ----------------------------------------------------------
check '{"name":"n","url":"'$base'/status/503"}'
[ "$(get service_check http.can_connect status)" = 2 ] && ok || bad "503: not CRITICAL"
want="Incorrect HTTP return code for url $base/status/503. Expected 1xx or 2xx or 3xx, got 503."
[ "$(get service_check http.can_connect message)" = "$want" ] && ok \
  || bad "503 message: $(get service_check http.can_connect message)"
[ "$(get metric network.http.can_connect value)" = 0 ] && ok || bad "503: can_connect gauge"
[ "$(get metric network.http.cant_connect value)" = 1 ] && ok || bad "503: cant_connect gauge"
[ -n "$(get metric network.http.response_time value)" ] && ok || bad "503: a response has a response_time"

# the default, (1|2|3)\d\d, read without a compile, and the same pattern
# anchored (compiled): 3xx is OK, 4xx is not
for pat in '' ',"http_response_status_code":"^(1|2|3)\\d\\d"'; do
  check '{"name":"n","url":"'$base'/status/302","allow_redirects":false'"$pat"'}'
  [ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "302 [$pat]: not OK"
  check '{"name":"n","url":"'$base'/status/404"'"$pat"'}'
  [ "$(get service_check http.can_connect status)" = 2 ] && ok || bad "404 [$pat]: not CRITICAL"
done

check '{"name":"n","url":"'$base'/status/404","http_response_status_code":404}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "404 expected as a number: not OK"
check '{"name":"n","url":"'$base'/status/404","http_response_status_code":"(4|5)\\d\\d"}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "(4|5)\\d\\d: 404 not OK"
check '{"name":"n","url":"'$base'/status/204","http_response_status_code":"^(200|204)$"}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "^(200|204)\$: 204 not OK"
check '{"name":"n","url":"'$base'/ok","http_response_status_code":"5\\d\\d"}'
want="Incorrect HTTP return code for url $base/ok. Expected 5\\d\\d, got 200."
[ "$(get service_check http.can_connect message)" = "$want" ] && ok \
  || bad "5\\d\\d message: $(get service_check http.can_connect message)"
# include_content: the body joins the message
check '{"name":"n","url":"'$base'/status/500","include_content":true}'
get service_check http.can_connect message | grep -qx "Content: status 500" && ok \
  || bad "include_content: $(get service_check http.can_connect message)"
# a pattern the matcher does not know fails the run and names the option
check '{"name":"n","url":"'$base'/ok","http_response_status_code":"2\\d+"}'
[ $rc -eq 1 ] && ok || bad "unsupported status pattern: exit $rc"
get service_check moonwatch.check_status message | grep -q "bad option 'http_response_status_code': '2\\\\d+': unsupported '+' at position 4" \
  && ok || bad "unsupported pattern message: $(get service_check moonwatch.check_status message)"
[ -z "$(get service_check http.can_connect status)" ] && ok || bad "bad pattern still checked the URL"

# --- content ---------------------------------------------------------------
check '{"name":"n","url":"'$base'/ok","content_match":"moon%a+"}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "content_match hit: not OK"
check '{"name":"n","url":"'$base'/ok","content_match":"absent"}'
[ "$(get service_check http.can_connect status)" = 2 ] && ok || bad "content_match miss: not CRITICAL"
[ "$(get service_check http.can_connect message)" = 'Content "absent" not found in response.' ] && ok \
  || bad "content_match miss message: $(get service_check http.can_connect message)"
check '{"name":"n","url":"'$base'/ok","content_match":"hello","reverse_content_match":true}'
[ "$(get service_check http.can_connect status)" = 2 ] && ok || bad "reverse hit: not CRITICAL"
[ "$(get service_check http.can_connect message)" = 'Content "hello" found in response with the reverse_content_match' ] \
  && ok || bad "reverse message: $(get service_check http.can_connect message)"
check '{"name":"n","url":"'$base'/ok","content_match":"absent","reverse_content_match":true}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "reverse miss: not OK"
check '{"name":"n","url":"'$base'/ok","content_match":"[unclosed"}'
[ $rc -eq 1 ] && get service_check moonwatch.check_status message | grep -q "bad option 'content_match': not a valid Lua pattern" \
  && ok || bad "bad Lua pattern: $(get service_check moonwatch.check_status message)"

# --- method, body, headers (the server echoes the request) -----------------
# expect_up JSON WHAT: runs the check, http.can_connect must be OK.
expect_up() {
  check "$1"
  [ "$(get service_check http.can_connect status)" = 0 ] && ok \
    || bad "$2: $(get service_check http.can_connect message)"
}
post='"url":"'$base'/echo","method":"post","data":{"k":"v"},"headers":{"X-Probe":"mw"}'
expect_up '{"name":"n",'"$post"',"content_match":"\"method\": \"POST\""}' "POST not sent"
expect_up '{"name":"n","url":"'$base'/ok","method":"head","content_match":"^$"}' "HEAD: not up or a body"
expect_up '{"name":"n",'"$post"',"content_match":"\"x%-probe\": \"mw\""}' "header not sent"
expect_up '{"name":"n",'"$post"',"content_match":"application/json"}' "mapping data: no JSON Content-Type"
expect_up '{"name":"n",'"$post"',"content_match":"\"body\": \"{\\\"k\\\":\\\"v\\\"}\""}' \
  "mapping data not sent as JSON"
check '{"name":"n","url":"'$base'/echo","method":"PUT","data":"a=b","content_match":"\"body\": \"a=b\""}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "string data not sent: $out"
check '{"name":"n","url":"'$base'/echo","method":"PUT","data":"a=b","content_match":"x%-www%-form%-urlencoded"}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "string data: no form Content-Type"
check '{"name":"n","url":"'$base'/echo","data":"a=b","content_match":"\"body\": \"\""}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "GET sent a body"
check '{"name":"n","url":"'$base'/ok","method":"FETCH"}'
[ $rc -eq 1 ] && get service_check moonwatch.check_status message \
  | grep -q "bad option 'method': one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS expected, got string \"FETCH\"" \
  && ok || bad "bad method not reported"

# --- redirects -------------------------------------------------------------
check '{"name":"n","url":"'$base'/redirect?to=/ok","content_match":"hello moonwatch"}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "redirect not followed"
check '{"name":"n","url":"'$base'/redirect?to=/ok","allow_redirects":false,"http_response_status_code":"302","content_match":"moved"}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "allow_redirects false: followed: $out"

# --- no connection ---------------------------------------------------------
closed=$(free_port)
check '{"name":"n","url":"http://127.0.0.1:'$closed'/"}'
[ $rc -eq 0 ] && ok || bad "refused: the check itself failed ($rc)"
[ "$(get service_check http.can_connect status)" = 2 ] && ok || bad "refused: not CRITICAL"
get service_check http.can_connect message | grep -q "refused.*\. Connection failed after [0-9]* ms$" && ok \
  || bad "refused message: $(get service_check http.can_connect message)"
[ "$(get metric network.http.can_connect value)" = 0 ] && ok || bad "refused: can_connect gauge"
[ "$(get metric network.http.cant_connect value)" = 1 ] && ok || bad "refused: cant_connect gauge"
[ -z "$(get metric network.http.response_time value)" ] && ok || bad "refused: response_time reported"

start=$(date +%s%N)
check '{"name":"n","url":"'$base'/slow/5","timeout":1}'
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 2500 ] && ok || bad "timeout took $ms ms"
[ "$(get service_check http.can_connect status)" = 2 ] && ok || bad "timeout: not CRITICAL: $out"
get service_check http.can_connect message | grep -q "timed out.*Connection failed after" && ok \
  || bad "timeout message: $(get service_check http.can_connect message)"
[ "$(get service_check moonwatch.check_status status)" = 0 ] && ok || bad "timeout: the run was stopped"

# --- configuration errors --------------------------------------------------
check '{"name":"n"}'
[ $rc -eq 1 ] && get service_check moonwatch.check_status message \
  | grep -q "bad option 'url': http:// or https:// URL expected, got no value$" \
  && ok || bad "missing url not reported"
check '{"name":"n","url":"ftp://127.0.0.1/"}'
get service_check moonwatch.check_status message \
  | grep -q "bad option 'url': http:// or https:// URL expected, got string \"ftp://127.0.0.1/\"" \
  && ok || bad "ftp url not reported"
check '{"url":"'$base'/ok"}'
get service_check moonwatch.check_status message \
  | grep -q "bad option 'name': non-empty string expected, got no value" \
  && ok || bad "missing name not reported"

# option errors: one format, from the line of the check that read the option
# bad_option JSON MESSAGE: the run fails with MESSAGE, nothing is checked
bad_option() {
  check "$1"
  local msg
  msg=$(get service_check moonwatch.check_status message)
  [ $rc -eq 1 ] && [ -z "$(get service_check http.can_connect status)" ] \
    && printf '%s\n' "$msg" | grep -qF "$2" \
    && printf '%s\n' "$msg" | grep -q "http_check.lua:[0-9]*: bad option '" \
    && ok || bad "$1: want '$2', got '$msg'"
}
bad_option '{"name":"n","url":"'$base'/ok","collect_response_time":"maybe"}' \
  "bad option 'collect_response_time': boolean expected, got string \"maybe\""
bad_option '{"name":"n","url":"'$base'/ok","collect_response_time":""}' \
  "bad option 'collect_response_time': boolean expected, got string \"\""
bad_option '{"name":"n","url":"'$base'/ok","include_content":2}' \
  "bad option 'include_content': boolean expected, got number 2"
bad_option '{"name":"n","url":"'$base'/ok","days_warning":"soon"}' \
  "bad option 'days_warning': number >= 0 expected, got string \"soon\""
bad_option '{"name":"n","url":"'$base'/ok","headers":["X-Probe: mw"]}' \
  "bad option 'headers': mapping expected, got list"
bad_option '{"name":"n","url":"'$base'/ok","headers":{"X-Probe":true}}' \
  "bad option 'headers.X-Probe': string expected, got boolean true"
bad_option '{"name":"n","url":"'$base'/ok","tls_ca_cert":["a.pem"]}' \
  "bad option 'tls_ca_cert': string expected, got list"
# the words YAML users write, and numeric strings, are taken
check '{"name":"n","url":"'$base'/ok","collect_response_time":"Off","days_warning":"5"}'
[ $rc -eq 0 ] && [ -z "$(get metric network.http.response_time value)" ] && ok \
  || bad "collect_response_time \"Off\": $out"

# --- TLS -------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 10 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2> "$tmp/openssl.err" \
  || { cat "$tmp/openssl.err" >&2; exit 1; }
# notAfter is notBefore + 10 days, to the second: once the clock is past
# notBefore's second, between 9 and 10 days are left, so days_left
# (rounded down, as Datadog's timedelta.days) is exactly 9.
not_before=$(date -u -d "$(openssl x509 -in "$tmp/cert.pem" -noout -startdate | cut -d= -f2)" +%s)
for _ in $(seq 1 30); do
  [ "$(date +%s)" -gt "$not_before" ] && break
  sleep 0.1
done
start_httpd tls --cert "$tmp/cert.pem" --key "$tmp/key.pem"
tbase="https://127.0.0.1:$port"

# not verified: up, and the certificate's 10 days are below days_warning (14)
check '{"name":"tls","url":"'$tbase'/ok","tls_verify":false}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "tls no verify: not OK: $out"
[ "$(get metric http.ssl.days_left value)" = 9 ] && ok \
  || bad "days_left $(get metric http.ssl.days_left value), want 9 (10 days less the seconds since)"
left=$(get metric http.ssl.seconds_left value)
python3 -c "import sys; sys.exit(not (10*86400 - 300 < float('${left:-0}') < 10*86400))" && ok \
  || bad "seconds_left $left"
[ "$(get service_check http.ssl_cert status)" = 1 ] && ok || bad "ssl_cert not WARNING"
[ "$(get service_check http.ssl_cert message)" = "This cert is almost expired, only 9 days left" ] && ok \
  || bad "ssl_cert message: $(get service_check http.ssl_cert message)"
tags=$(get service_check http.ssl_cert tags)
has_tag "$tags" "url:$tbase/ok" && has_tag "$tags" "instance:tls" && ok || bad "ssl_cert tags: $tags"
tags=$(get metric http.ssl.days_left tags)
has_tag "$tags" "url:$tbase/ok" && has_tag "$tags" "instance:tls" && ok || bad "days_left tags: $tags"

# the scheme's case does not matter: an HTTPS:// URL is checked as https
check '{"name":"tls","url":"HTTPS://127.0.0.1:'$port'/ok","tls_verify":false}'
[ "$(get service_check http.ssl_cert status)" = 1 ] && [ "$(get metric http.ssl.days_left value)" = 9 ] \
  && ok || bad "HTTPS:// URL: no certificate check: $out"

check '{"name":"tls","url":"'$tbase'/ok","tls_verify":false,"days_critical":10}'
[ "$(get service_check http.ssl_cert status)" = 2 ] && ok || bad "days_critical 10: not CRITICAL"
[ "$(get service_check http.ssl_cert message)" = "This cert TTL is critical: only 9 days before it expires" ] \
  && ok || bad "critical message: $(get service_check http.ssl_cert message)"
check '{"name":"tls","url":"'$tbase'/ok","tls_verify":false,"days_warning":5,"days_critical":2}'
[ "$(get service_check http.ssl_cert status)" = 0 ] && ok || bad "days_warning 5: not OK"
check '{"name":"tls","url":"'$tbase'/ok","tls_verify":false,"check_certificate_expiration":false}'
[ -z "$(get service_check http.ssl_cert status)" ] && [ -z "$(get metric http.ssl.days_left value)" ] \
  && ok || bad "check_certificate_expiration false still checked"

# verified (the default) against an unknown CA: both CRITICAL
check '{"name":"tls","url":"'$tbase'/ok"}'
[ "$(get service_check http.can_connect status)" = 2 ] && ok || bad "unverified: can_connect not CRITICAL"
[ "$(get service_check http.ssl_cert status)" = 2 ] && ok || bad "unverified: ssl_cert not CRITICAL: $out"
get service_check http.ssl_cert message | grep -qi "certificate" && ok \
  || bad "unverified message: $(get service_check http.ssl_cert message)"
[ -z "$(get metric http.ssl.days_left value)" ] && ok || bad "unverified: days_left reported"

# verified against the certificate itself as the CA
check '{"name":"tls","url":"'$tbase'/ok","ca_certs":"'$tmp/cert.pem'"}'
[ "$(get service_check http.can_connect status)" = 0 ] && ok || bad "ca_certs: not OK: $out"
[ "$(get service_check http.ssl_cert status)" = 1 ] && ok || bad "ca_certs: ssl_cert not WARNING"

# a server that is down: the certificate is unknown
check '{"name":"tls","url":"https://127.0.0.1:'$closed'/","tls_verify":false}'
[ "$(get service_check http.ssl_cert status)" = 3 ] && ok || bad "down https: ssl_cert not UNKNOWN"

# nothing on stderr: no log line, no sanitizer report
[ ! -s "$tmp/stderr" ] && ok || { bad "stderr:"; head -50 "$tmp/stderr" >&2; }

tally
