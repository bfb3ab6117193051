#!/usr/bin/env bash
# Smoke test of the private Docker engine harness (lib/dockerd.sh):
# start the engine, import the busybox image, serve HTTP from a
# host-network container, stop it, restart the engine and find the
# container again. Needs root, docker.io and busybox-static, else exits
# 77 (skipped); prints phase timings.
# needs: docker
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/dockerd.sh
. "$here/lib/dockerd.sh"
if ! why=$(mw_dockerd_usable); then
  echo "SKIP: $why"
  exit 77
fi

port=${MW_SMOKE_PORT:-18080}
image=busybox-mw:1
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
# Elapsed milliseconds of COMMAND..., into $ms.
timed() {
  local t0
  t0=$(_mw_now_ms)
  "$@"
  ms=$(($(_mw_now_ms) - t0))
}

# The server needs a moment after `docker run` returns: retry, each try
# bounded.
http_ok() {
  local body
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    body=$(curl -sf --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null) || body=
    [ "$body" = "moonwatch busybox image" ] && return 0
    sleep 0.2
  done
  return 1
}
# --init: busybox httpd as pid 1 would ignore SIGTERM and cost the full
# stop timeout.
run_web() {
  mw_docker run -d --init --network host --name web "$image" \
    httpd -f -p "127.0.0.1:$port" >/dev/null
}
stop_web() { mw_docker stop -t 5 web >/dev/null; }
not_running() {
  [ "$(mw_docker inspect -f '{{.State.Running}}' web 2>/dev/null)" = false ]
}
listed() {
  mw_docker ps -a --filter name=^/web$ --format '{{.Names}}' | grep -qx web
}
finish() {
  mw_dockerd_stop || true
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
trap finish EXIT
trap 'exit 130' INT TERM

t_all=$(_mw_now_ms)
dir=$(mktemp -d /tmp/mw-dockerd.XXXXXX)
if ! mw_dockerd_start "$dir"; then
  bad "engine start"
  exit 1
fi
ok "engine ready in ${MW_DOCKERD_READY_MS} ms"

timed mw_dockerd_image "$image" || { bad "image import"; exit 1; }
ok "image $image imported in $ms ms"

timed check "docker run" run_web
echo "   run took $ms ms"
timed check "HTTP from the container" http_ok
echo "   first good response after $ms ms"
timed check "docker stop" stop_web
echo "   stop took $ms ms"
check "container stopped" not_running

timed mw_dockerd_restart || { bad "engine restart"; exit 1; }
ok "engine restarted in $ms ms (ready after ${MW_DOCKERD_READY_MS} ms)"
check "container still listed after restart" listed

timed mw_dockerd_stop
ok "engine stopped and removed in $ms ms"
check "no state left" test ! -e "$dir"
echo "   whole smoke test: $(($(_mw_now_ms) - t_all)) ms"
