#!/usr/bin/env bash
# The nginx, redisdb and mcache checks against real servers from Debian's
# nginx, redis-server (with redis-tools) and memcached packages, started
# here on free 127.0.0.1 ports in a temporary directory and stopped on
# exit: exact values where the test wrote them (keys, items, hits), the
# kind of each metric (gauge, rate, count), tags, and the service checks
# with their messages when a server is down, never answers (the check's
# own CRITICAL comes before the run's time budget), refuses a password or
# serves something else; basic auth, Redis ACL users, databases and
# replication; TLS for nginx and Redis when openssl can make a certificate.
#
# usage: servers.sh MOONWATCH. Exits 77 (skipped) when a server package or
# python3 is missing. Works as root (the servers' own user switching is
# set for it) or not. Every wait is bounded; each check run is under
# `timeout`. MW_KEEP=1 keeps the temporary directory (outputs, server logs).
set -uo pipefail
mw=${1:?usage: servers.sh MOONWATCH}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
emitted=$root/tests/fixtures/servers/emitted.py
PATH=$PATH:/usr/sbin:/sbin

missing=
for b in nginx redis-server redis-cli memcached python3 timeout; do
  command -v "$b" >/dev/null 2>&1 || missing="$missing $b"
done
if [ -n "$missing" ]; then
  echo "SKIP: missing$missing (packages nginx redis-server memcached)"
  exit 77
fi

dir=$(mktemp -d /tmp/mw-servers.XXXXXX)
pids=()
pass=0 fail=0

stop_all() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$p" 2>/dev/null
  done
  if [ -n "${MW_KEEP:-}" ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
finish() {
  stop_all
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
trap finish EXIT
trap 'exit 130' INT TERM

ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
expect() { # expect DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
q() { python3 "$emitted" "$@"; }
# metric NAME KIND OP VALUE [TAG...] / sc NAME STATUS TEXT [TAG...] on $out
metric() { q metric "$out" "$@"; }
sc() { q sc "$out" "$@"; }
took_under() { [ "$took_ms" -lt "$1" ] || { echo "took $took_ms ms" >&2; return 1; }; }
no_grep() { ! grep "$@" >&2; }
rc_is() { [ "$rc" -eq "$1" ] || { echo "exit status $rc, expected $1" >&2; return 1; }; }

# mwcheck LABEL CHECK INSTANCE-JSON [TIMES]: one `moonwatch check`, its
# output in $out (JSON lines) and $dir/LABEL.err, its exit status in $rc.
# Its duration in $took_ms.
mwcheck() {
  out=$dir/$1.out
  rc=0
  local t0
  t0=$(date +%s%N)
  timeout 60 "$mw" check "$2" --checks-dir "$root/checks" --instance "$3" --times "${4:-1}" \
    >"$out" 2>"$dir/$1.err" || rc=$?
  took_ms=$((($(date +%s%N) - t0) / 1000000))
  q alljson "$out" || bad "$1: output is not JSON lines"
  ! grep -E "Sanitizer|runtime error:" "$dir/$1.err" >&2 || bad "$1: sanitizer report"
}

# Free ports, all held at once so they differ; the last stays closed.
read -r nport ntls rport rpass rrepl rtls mport mauth hole dead <<<"$(python3 -c '
import socket
ss = [socket.socket() for _ in range(10)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"

# wait_for DESCRIPTION COMMAND...: up to 10 s.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 100); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  bad "$what not ready after 10 s"
  return 1
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
rcli() { local p=$1; shift; timeout 10 redis-cli -h 127.0.0.1 -p "$p" "$@"; }

# ------------------------------------------------------------ servers

mkdir -p "$dir/nginx" "$dir/redis" "$dir/replica" "$dir/secret" "$dir/tls"
# A certificate for 127.0.0.1 when openssl is there; the TLS cases are
# skipped without it.
tls=
if command -v openssl >/dev/null 2>&1 &&
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" \
    >"$dir/tls/openssl.log" 2>&1; then
  tls=yes
else
  echo "note: no openssl, TLS cases skipped"
fi
tls_server=
[ -n "$tls" ] && tls_server="server {
    listen 127.0.0.1:$ntls ssl;
    ssl_certificate $dir/tls/cert.pem;
    ssl_certificate_key $dir/tls/key.pem;
    location = /nginx_status { stub_status; }
  }"
# nginx reads {PLAIN} passwords in auth_basic_user_file.
printf 'mon:{PLAIN}pw1\n' >"$dir/nginx/htpasswd"
# Started as root, nginx's worker runs as nobody and reads it.
chmod 755 "$dir" "$dir/nginx" && chmod 644 "$dir/nginx/htpasswd"
cat >"$dir/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body;
  proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fastcgi;
  uwsgi_temp_path $dir/nginx/uwsgi;
  scgi_temp_path $dir/nginx/scgi;
  server {
    listen 127.0.0.1:$nport;
    location = /nginx_status { stub_status; }
    location / { return 404; }
    location = /hello { default_type text/plain; return 200 "hello, not a status page\n"; }
    location = /private_status {
      auth_basic private;
      auth_basic_user_file $dir/nginx/htpasswd;
      stub_status;
    }
  }
  $tls_server
}
EOF
nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" -e "$dir/nginx/error.log" \
  -g 'daemon off;' >"$dir/nginx/out.log" 2>&1 &
pids+=($!)

redis() { # redis NAME PORT ARGS...
  local name=$1 port=$2
  shift 2
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir "$dir/$name" --logfile "$dir/$name/redis.log" "$@" &
  pids+=($!)
}
redis redis "$rport" --repl-diskless-sync yes --repl-diskless-sync-delay 0
redis secret "$rpass" --requirepass s3cret
redis replica "$rrepl" --replicaof 127.0.0.1 "$rport"
if [ -n "$tls" ]; then
  mkdir -p "$dir/rtls"
  redis rtls 0 --tls-port "$rtls" --tls-cert-file "$dir/tls/cert.pem" \
    --tls-key-file "$dir/tls/key.pem" --tls-ca-cert-file "$dir/tls/cert.pem" \
    --tls-auth-clients no
fi

asroot=()
[ "$(id -u)" -eq 0 ] && asroot=(-u root)
memcached -l 127.0.0.1 -p "$mport" -U 0 "${asroot[@]}" >"$dir/memcached.log" 2>&1 &
pids+=($!)
printf 'mon:pass1\n' >"$dir/mc-auth"
memcached -l 127.0.0.1 -p "$mauth" -U 0 -Y "$dir/mc-auth" "${asroot[@]}" \
  >"$dir/memcached-auth.log" 2>&1 &
pids+=($!)

# A black hole: the kernel completes the handshake, nothing ever answers.
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
time.sleep(300)' "$hole" &
pids+=($!)

wait_for nginx port_open "$nport" || exit 1
wait_for "black hole" port_open "$hole" || exit 1
[ -z "$tls" ] || wait_for "redis over TLS" port_open "$rtls" || exit 1
wait_for redis rcli "$rport" ping || exit 1
wait_for "redis with a password" port_open "$rpass" || exit 1
wait_for memcached port_open "$mport" || exit 1
wait_for "memcached with auth" port_open "$mauth" || exit 1
repl_up() { rcli "$rrepl" info replication | grep -q '^master_link_status:up'; }
wait_for "redis replication" repl_up || exit 1

# ------------------------------------------------------------ nginx

# Three requests of our own on a fresh server: the check's first request
# is the 4th, its second the 5th (a stub_status request counts itself).
python3 -c '
import sys, urllib.request
for _ in range(3):
    urllib.request.urlopen("http://127.0.0.1:%s/hello" % sys.argv[1], timeout=5).read()' "$nport"
status_url=http://127.0.0.1:$nport/nginx_status
mwcheck nginx nginx "{\"nginx_status_url\":\"$status_url\",\"tags\":[\"team:web\"]}" 2
expect "nginx: exits 0" rc_is 0
expect "nginx.can_connect OK, tagged host and port" \
  sc nginx.can_connect 0 "" "host:127.0.0.1" "port:$nport" team:web
expect "nginx.requests.total is 5 (3 ours + 2 runs)" metric nginx.requests.total gauge eq 5 team:web
expect "nginx.requests.total_count counts 1 request between the runs" \
  metric nginx.requests.total_count count eq 1
expect "nginx.connections.accepted >= 4" metric nginx.connections.accepted gauge ge 4
expect "nginx.connections.dropped is 0" metric nginx.connections.dropped gauge eq 0
expect "nginx.net.connections >= 1 (the status request)" metric nginx.net.connections gauge ge 1
expect "nginx.net.writing >= 1 (the status request)" metric nginx.net.writing gauge ge 1
expect "nginx.net.reading is a gauge" metric nginx.net.reading gauge ge 0
expect "nginx.net.waiting is a gauge" metric nginx.net.waiting gauge ge 0
# mw.rate sends the per-second derivative as a gauge, as Datadog's
# AgentCheck.rate does: one request in the second between the runs.
expect "nginx.net.request_per_s is a per-second value > 0" \
  metric nginx.net.request_per_s gauge gt 0
expect "nginx.net.request_per_s is not the total (<= 1 a second)" \
  metric nginx.net.request_per_s gauge le 1
expect "nginx.net.conn_opened_per_s <= 1 a second" metric nginx.net.conn_opened_per_s gauge le 1
expect "nginx.net.conn_dropped_per_s is 0" metric nginx.net.conn_dropped_per_s gauge eq 0

mwcheck nginx-once nginx "{\"nginx_status_url\":\"$status_url\"}" 1
expect "nginx, one run: no rate yet" q absent "$out" nginx.net.request_per_s
expect "nginx, one run: gauges already" metric nginx.net.connections gauge ge 1

mwcheck nginx-text nginx "{\"nginx_status_url\":\"http://127.0.0.1:$nport/hello\"}"
expect "nginx, not a status page: exits 1" rc_is 1
expect "nginx, not a status page: CRITICAL naming what was expected" \
  sc nginx.can_connect 2 "did not return a stub_status page ('Active connections: N'"
expect "nginx, not a status page: quotes what it got" \
  sc nginx.can_connect 2 '"hello, not a status page"'
expect "nginx, not a status page: no metrics" q absent "$out" nginx.net.connections

mwcheck nginx-404 nginx "{\"nginx_status_url\":\"http://127.0.0.1:$nport/nope\"}"
expect "nginx, 404: exits 1" rc_is 1
expect "nginx, 404: CRITICAL with the status" sc nginx.can_connect 2 "answered HTTP 404"

mwcheck nginx-down nginx "{\"nginx_status_url\":\"http://127.0.0.1:$dead/nginx_status\"}"
expect "nginx, down: exits 1" rc_is 1
expect "nginx, down: CRITICAL, cannot reach" \
  sc nginx.can_connect 2 "cannot reach the status page: GET http://127.0.0.1:$dead/nginx_status" \
  "port:$dead"

mwcheck nginx-noopt nginx '{}'
expect "nginx, no nginx_status_url: exits 1" rc_is 1
expect "nginx, no nginx_status_url: says so" \
  grep -q "bad option 'nginx_status_url': http:// or https:// URL expected, got no value" \
  "$dir/nginx-noopt.out" "$dir/nginx-noopt.err"

priv=http://127.0.0.1:$nport/private_status
mwcheck nginx-auth nginx "{\"nginx_status_url\":\"$priv\",\"username\":\"mon\",\"password\":\"pw1\"}"
expect "nginx with basic auth: OK" sc nginx.can_connect 0 ""
expect "nginx with basic auth: metrics" metric nginx.net.connections gauge ge 1
mwcheck nginx-auth-user nginx "{\"nginx_status_url\":\"$priv\",\"user\":\"mon\",\"password\":\"pw1\"}"
expect "nginx with basic auth, Datadog's older option user: OK" sc nginx.can_connect 0 ""
mwcheck nginx-auth-none nginx "{\"nginx_status_url\":\"$priv\"}"
expect "nginx without the credentials: CRITICAL 401" sc nginx.can_connect 2 "answered HTTP 401"

mwcheck nginx-hole nginx \
  "{\"nginx_status_url\":\"http://127.0.0.1:$hole/nginx_status\",\"timeout\":1}"
expect "nginx, no answer: CRITICAL" sc nginx.can_connect 2 "cannot reach the status page: GET http://127.0.0.1:$hole"
expect "nginx, no answer: over in < 5 s with timeout 1" took_under 5000

if [ -n "$tls" ]; then
  surl=https://127.0.0.1:$ntls/nginx_status
  mwcheck nginx-tls nginx "{\"nginx_status_url\":\"$surl\",\"tls_verify\":false}"
  expect "nginx over https, tls_verify false: OK" sc nginx.can_connect 0 "" "port:$ntls"
  expect "nginx over https: metrics" metric nginx.net.connections gauge ge 1
  mwcheck nginx-tls-old nginx "{\"nginx_status_url\":\"$surl\",\"ssl_validation\":false}"
  expect "nginx over https, Datadog's older ssl_validation false: OK" sc nginx.can_connect 0 ""
  mwcheck nginx-tls-verify nginx "{\"nginx_status_url\":\"$surl\"}"
  expect "nginx over https, self-signed, verified by default: CRITICAL" \
    sc nginx.can_connect 2 "cannot reach the status page: GET $surl"
  mwcheck nginx-tls-ca nginx \
    "{\"nginx_status_url\":\"$surl\",\"tls_ca_cert\":\"$dir/tls/cert.pem\"}"
  expect "nginx over https, verified with tls_ca_cert: OK" sc nginx.can_connect 0 ""
fi

# ------------------------------------------------------------ redis

{
  rcli "$rport" SET k1 a && rcli "$rport" SET k2 b && rcli "$rport" SET k3 c
  rcli "$rport" SET tmp x EX 600 && rcli "$rport" RPUSH mylist a b c
  rcli "$rport" -n 1 SET other y
} >/dev/null
rinst="{\"host\":\"127.0.0.1\",\"port\":$rport,\"keys\":[\"mylist\",\"k*\",\"missing\"],"
rinst+="\"command_stats\":true,\"collect_client_metrics\":true}"
mwcheck redis redisdb "$rinst" 2
expect "redis: exits 0" rc_is 0
rt=(redis_host:127.0.0.1 "redis_port:$rport" redis_role:master)
expect "redis.can_connect OK with host, port and role tags" sc redis.can_connect 0 "" "${rt[@]}"
expect "redis.keys db0 is 5" metric redis.keys gauge eq 5 "${rt[@]}" redis_db:db0
expect "redis.keys db1 is 1" metric redis.keys gauge eq 1 redis_db:db1
expect "redis.expires db0 is 1" metric redis.expires gauge eq 1 redis_db:db0
expect "redis.persist db0 is 4" metric redis.persist gauge eq 4 redis_db:db0
expect "redis.persist.percent db0 is 80" metric redis.persist.percent gauge eq 80 redis_db:db0
expect "redis.expires.percent db0 is 20" metric redis.expires.percent gauge eq 20 redis_db:db0
expect "redis.key.length mylist is 3" \
  metric redis.key.length gauge eq 3 key:mylist key_type:list redis_db:db0
expect "redis.key.length k2 (pattern k*) is 1" \
  metric redis.key.length gauge eq 1 key:k2 key_type:string redis_db:db0
expect "redis.key.length missing is 0" metric redis.key.length gauge eq 0 key:missing
expect "redis.command.calls for SET is 5" metric redis.command.calls gauge eq 5 command:set
expect "redis.net.connections: the check's and the replica's, unnamed" \
  metric redis.net.connections gauge eq 2 source:unknown
expect "redis.net.clients >= 1" metric redis.net.clients gauge ge 1 "${rt[@]}"
expect "redis.net.slaves is 1 (the replica)" metric redis.net.slaves gauge eq 1
expect "redis.replication.delay for the replica" \
  metric redis.replication.delay gauge ge 0 "slave_port:$rrepl" slave_id:0
expect "redis.mem.used > 0" metric redis.mem.used gauge gt 0
expect "redis.mem.rss > 0" metric redis.mem.rss gauge gt 0
expect "redis.net.maxclients > 0" metric redis.net.maxclients gauge gt 0
expect "redis.info.latency_ms is a gauge" metric redis.info.latency_ms gauge ge 0
expect "redis.rdb.changes_since_last >= 6" metric redis.rdb.changes_since_last gauge ge 6
expect "redis.net.commands is a per-second value > 0" metric redis.net.commands gauge gt 0
expect "redis.cpu.sys is a per-second value" metric redis.cpu.sys gauge ge 0
# Between the runs only the check's own 5 lookups (TYPE, LLEN) hit, in >= 1 s.
expect "redis.stats.keyspace_hits is a per-second value > 0" \
  metric redis.stats.keyspace_hits gauge gt 0
expect "redis.stats.keyspace_hits <= 5 a second" metric redis.stats.keyspace_hits gauge le 5
expect "redis.aof.rewrite is a gauge" metric redis.aof.rewrite gauge eq 0
expect "a missing key is warned about" grep -q "missing key not found in redis" \
  "$dir/redis.out" "$dir/redis.err"

# The slow log: log every command, then one run reports them by name.
rcli "$rport" CONFIG SET slowlog-log-slower-than 0 >/dev/null
rcli "$rport" GET k1 >/dev/null
mwcheck redis-slow redisdb "{\"host\":\"127.0.0.1\",\"port\":\"$rport\"}"
expect "redis.slowlog.micros histogram, tagged command:GET" \
  metric redis.slowlog.micros.max gauge ge 0 command:GET "redis_port:$rport"
expect "redis.slowlog.micros.count is a rate" \
  metric redis.slowlog.micros.count rate gt 0 command:GET
expect "redis, one run: no rate yet" q absent "$out" redis.net.commands
rcli "$rport" CONFIG SET slowlog-log-slower-than 10000 >/dev/null

# The replica: role, link status.
mwcheck replica redisdb "{\"host\":\"127.0.0.1\",\"port\":$rrepl}"
expect "replica: exits 0" rc_is 0
expect "replica: redis_role:slave" sc redis.can_connect 0 "" redis_role:slave
expect "replica: master_link_status OK" sc redis.replication.master_link_status 0 ""
expect "replica: master_link_down_since_seconds is 0" \
  metric redis.replication.master_link_down_since_seconds gauge eq 0 redis_role:slave
expect "replica: the keys replicated" metric redis.keys gauge eq 5 redis_db:db0

# A connection killed between two runs: the second run opens a new one.
timeout 60 "$mw" check redisdb --checks-dir "$root/checks" --times 2 \
  --instance "{\"host\":\"127.0.0.1\",\"port\":$rport}" >"$dir/redis-kill.out" \
  2>"$dir/redis-kill.err" &
mwpid=$!
killed=
for _ in $(seq 200); do
  id=$(rcli "$rport" CLIENT LIST | awk '/cmd=slowlog/ { sub("id=", "", $1); print $1; exit }')
  if [ -n "$id" ]; then
    [ "$(rcli "$rport" CLIENT KILL ID "$id")" = 1 ] && killed=yes
    break
  fi
  sleep 0.02
done
rc=0
wait "$mwpid" || rc=$?
out=$dir/redis-kill.out
expect "redis: the idle connection was killed between the runs" [ "$killed" = yes ]
expect "redis, killed connection: exits 0" rc_is 0
expect "redis, killed connection: both runs OK" [ "$(q count "$out" redis.can_connect 0)" = 2 ]

# Passwords.
mwcheck secret-ok redisdb "{\"host\":\"127.0.0.1\",\"port\":$rpass,\"password\":\"s3cret\"}"
expect "redis with the right password: OK" sc redis.can_connect 0 "" "redis_port:$rpass"
expect "redis with the right password: metrics" metric redis.mem.used gauge gt 0

rcli "$rpass" -a s3cret --no-auth-warning ACL SETUSER mon on '>monpass' '~*' '&*' '+@all' \
  >/dev/null
mwcheck secret-acl redisdb \
  "{\"host\":\"127.0.0.1\",\"port\":$rpass,\"username\":\"mon\",\"password\":\"monpass\"}"
expect "redis with an ACL user: OK" sc redis.can_connect 0 "" "redis_port:$rpass"

mwcheck secret-none redisdb "{\"host\":\"127.0.0.1\",\"port\":$rpass}"
expect "redis without the password: exits 1" rc_is 1
expect "redis without the password: CRITICAL NOAUTH, says to set password" \
  sc redis.can_connect 2 "NOAUTH Authentication required. (set the instance option password)" \
  "redis_host:127.0.0.1" "redis_port:$rpass"
expect "redis without the password: no metrics" q absent "$out" redis.mem.used

mwcheck secret-wrong redisdb "{\"host\":\"127.0.0.1\",\"port\":$rpass,\"password\":\"nope\"}"
expect "redis with a wrong password: exits 1" rc_is 1
expect "redis with a wrong password: CRITICAL AUTH refused" \
  sc redis.can_connect 2 "redis at 127.0.0.1:$rpass: AUTH refused: WRONGPASS"

mwcheck redis-down redisdb "{\"host\":\"127.0.0.1\",\"port\":$dead}"
expect "redis down: exits 1" rc_is 1
expect "redis down: CRITICAL cannot connect" \
  sc redis.can_connect 2 "redis at 127.0.0.1:$dead: cannot connect" "redis_port:$dead"

mwcheck redis-noport redisdb '{"host":"127.0.0.1"}'
expect "redis without port: exits 1" rc_is 1
expect "redis without port: says so" \
  grep -q "bad option 'port': integer from 1 to 65535 expected, got no value" \
  "$dir/redis-noport.out" "$dir/redis-noport.err"

mwcheck redis-db1 redisdb "{\"host\":\"127.0.0.1\",\"port\":$rport,\"db\":1,\
\"keys\":[\"other\",\"k1\"],\"warn_on_missing_keys\":false}"
expect "redis db 1: exits 0" rc_is 0
expect "redis db 1: key other has length 1 in db1" \
  metric redis.key.length gauge eq 1 key:other key_type:string redis_db:db1
expect "redis db 1: k1 (only in db0) counts 0 in db1" \
  metric redis.key.length gauge eq 0 key:k1 redis_db:db1
expect "redis db 1: no warning with warn_on_missing_keys false" \
  no_grep -q "not found in redis" "$dir/redis-db1.err"

mwcheck redis-hole redisdb "{\"host\":\"127.0.0.1\",\"port\":$hole,\"socket_timeout\":1}"
expect "redis, no answer: CRITICAL" sc redis.can_connect 2 "redis at 127.0.0.1:$hole: INFO failed"
expect "redis, no answer: over in < 5 s with socket_timeout 1" took_under 5000

if [ -n "$tls" ]; then
  mwcheck rtls redisdb "{\"host\":\"127.0.0.1\",\"port\":$rtls,\"ssl\":true}"
  expect "redis over TLS, not verified (ssl_cert_reqs 0): OK" \
    sc redis.can_connect 0 "" "redis_port:$rtls"
  expect "redis over TLS: metrics" metric redis.mem.used gauge gt 0 "redis_port:$rtls"
  mwcheck rtls-ca redisdb "{\"host\":\"127.0.0.1\",\"port\":$rtls,\"ssl\":true,\
\"ssl_cert_reqs\":2,\"ssl_ca_certs\":\"$dir/tls/cert.pem\"}"
  expect "redis over TLS, verified with ssl_ca_certs: OK" sc redis.can_connect 0 ""
  mwcheck rtls-noca redisdb \
    "{\"host\":\"127.0.0.1\",\"port\":$rtls,\"ssl\":true,\"ssl_cert_reqs\":2}"
  expect "redis over TLS, self-signed, verified: CRITICAL" \
    sc redis.can_connect 2 "redis at 127.0.0.1:$rtls"
  mwcheck rtls-plain redisdb "{\"host\":\"127.0.0.1\",\"port\":$rtls}"
  expect "redis over TLS, spoken to in plain text: CRITICAL" \
    sc redis.can_connect 2 "redis at 127.0.0.1:$rtls: INFO failed"
fi

# ------------------------------------------------------------ memcached

mc() { # mc PORT: the protocol lines on stdin, the answers on stdout
  python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.stdin.buffer.read())
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
sys.stdout.write(data.decode())' "$1"
}
# Two items of 5 and 7 bytes, one hit and one miss.
printf 'set a 0 0 5\r\nhello\r\nset b 0 0 7\r\ngoodbye\r\nget a\r\nget zz\r\nquit\r\n' \
  | mc "$mport" >"$dir/mc-set.txt"
expect "memcached took the items" [ "$(grep -c STORED "$dir/mc-set.txt")" = 2 ]
minst="{\"url\":\"127.0.0.1\",\"port\":$mport,\"options\":{\"items\":true,\"slabs\":true}}"
mwcheck mcache mcache "$minst" 2
expect "mcache: exits 0" rc_is 0
mt="url:127.0.0.1:$mport"
expect "memcache.can_connect OK, tagged host and port" \
  sc memcache.can_connect 0 "" host:127.0.0.1 "port:$mport"
expect "memcache.curr_items is 2" metric memcache.curr_items gauge eq 2 "$mt"
expect "memcache.total_items is 2" metric memcache.total_items gauge eq 2 "$mt"
expect "memcache.get_hit_percent is 50" metric memcache.get_hit_percent gauge eq 50 "$mt"
bytes=$(printf 'stats\r\nquit\r\n' | mc "$mport" | awk '$2 == "bytes" { print $3+0 }')
limit=$(printf 'stats\r\nquit\r\n' | mc "$mport" | awk '$2 == "limit_maxbytes" { print $3+0 }')
expect "memcache.bytes is what stats says ($bytes)" metric memcache.bytes gauge eq "$bytes" "$mt"
expect "memcache.avg_item_size is bytes / 2" \
  metric memcache.avg_item_size gauge eq "$(python3 -c "print($bytes / 2)")" "$mt"
expect "memcache.fill_percent is 100 * bytes / limit_maxbytes" \
  metric memcache.fill_percent gauge eq "$(python3 -c "print(100 * $bytes / $limit)")" "$mt"
expect "memcache.uptime is a gauge" metric memcache.uptime gauge ge 0 "$mt"
expect "memcache.curr_connections >= 1" metric memcache.curr_connections gauge ge 1 "$mt"
expect "memcache.cmd_get_rate is 0 a second (no gets between the runs)" \
  metric memcache.cmd_get_rate gauge eq 0 "$mt"
expect "memcache.get_hits_rate is 0 a second" metric memcache.get_hits_rate gauge eq 0 "$mt"
expect "memcache.total_connections_rate: the check's connection, <= 1 a second" \
  metric memcache.total_connections_rate gauge gt 0 "$mt"
expect "memcache.total_connections_rate is not the total" \
  metric memcache.total_connections_rate gauge le 1 "$mt"
expect "memcache.items.number is 2 in one slab" metric memcache.items.number gauge eq 2 "$mt"
expect "memcache.slabs.active_slabs is 1" metric memcache.slabs.active_slabs gauge eq 1 "$mt"
expect "memcache.slabs.used_chunks is 2, tagged by slab" \
  metric memcache.slabs.used_chunks gauge eq 2 "$mt"
expect "memcache.items.* tagged slab:<id>" \
  grep -q '"metric":"memcache.items.number".*"slab:[0-9]*"' "$out"

mwcheck mcache-auth mcache "{\"url\":\"127.0.0.1\",\"port\":$mauth,\"username\":\"mon\",\"password\":\"pass1\"}"
expect "memcached with auth, right password: OK" sc memcache.can_connect 0 "" "port:$mauth"
expect "mcache, one run: no rate yet" q absent "$out" memcache.cmd_get_rate
expect "mcache, one run: gauges already" metric memcache.curr_items gauge eq 0
mwcheck mcache-auth-bad mcache "{\"url\":\"127.0.0.1\",\"port\":$mauth,\"username\":\"mon\",\"password\":\"x\"}"
expect "memcached with auth, wrong password: exits 1" rc_is 1
expect "memcached with auth, wrong password: CRITICAL" \
  sc memcache.can_connect 2 "authentication refused"
mwcheck mcache-auth-none mcache "{\"url\":\"127.0.0.1\",\"port\":$mauth}"
expect "memcached with auth, no password: CRITICAL naming the answer" \
  sc memcache.can_connect 2 "unexpected answer to stats"

mwcheck mcache-hole mcache "{\"url\":\"127.0.0.1\",\"port\":$hole,\"timeout\":1}"
expect "memcached, no answer: CRITICAL" \
  sc memcache.can_connect 2 "Unable to fetch stats from server 127.0.0.1:$hole: reading stats"
expect "memcached, no answer: over in < 5 s with timeout 1" took_under 5000

mwcheck mcache-down mcache "{\"url\":\"127.0.0.1\",\"port\":$dead}"
expect "memcached down: exits 1" rc_is 1
expect "memcached down: CRITICAL, Unable to fetch stats" \
  sc memcache.can_connect 2 "Unable to fetch stats from server 127.0.0.1:$dead: cannot connect" \
  "port:$dead"
